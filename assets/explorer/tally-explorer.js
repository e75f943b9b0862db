// Boots GraphiQL for tally. Loaded after React, ReactDOM and GraphiQL (UMD globals).
// Everything is same-origin: the page is served at `/`, assets under `explorer/`,
// and GraphQL at `graphql` relative to the page (i.e. `/graphql`, or `<prefix>/graphql`
// behind a reverse proxy that mounts tally under a prefix).
(function () {
  'use strict';

  var FALLBACK_QUERY = '{\n  __schema {\n    queryType {\n      name\n    }\n  }\n}\n';

  function defaultQuery() {
    var el = document.getElementById('tally-default-query');
    var raw = el ? el.textContent.trim() : '';
    if (raw === '' || raw.indexOf('/*') === 0) {
      return FALLBACK_QUERY; // placeholder not substituted (file served as-is)
    }
    try {
      var parsed = JSON.parse(raw);
      return typeof parsed === 'string' ? parsed : FALLBACK_QUERY;
    } catch (e) {
      return FALLBACK_QUERY;
    }
  }

  var endpoint = new URL('graphql', document.baseURI).href;
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    // Plain JSON POSTs only: no multipart/incremental delivery, no websockets.
    enableIncrementalDelivery: false,
  });

  var e = React.createElement;
  var root = ReactDOM.createRoot(document.getElementById('explorer'));
  root.render(
    e(
      GraphiQL,
      {
        fetcher: fetcher,
        defaultQuery: defaultQuery(),
        storage: GraphiQL.createLocalStorage({ namespace: 'tally-explorer' }),
        defaultEditorToolsVisibility: false,
        shouldPersistHeaders: false,
      },
      // Replaces the default logo (a link to github.com) with plain text and a link to the
      // dashboard (same origin, relative to this page).
      e(GraphiQL.Logo, null, 'tally explorer · ', e('a', { href: 'dashboard' }, 'dashboard'))
    )
  );
})();

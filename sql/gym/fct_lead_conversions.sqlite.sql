-- fct_lead_conversions (model `gym`, figure 1.4.2 of the task; SQLite variant)
--
-- Three rows per user that exists as of the instant T, one per conversion filter:
--   MEMBERSHIP  - only membership purchases can convert the user;
--   USER_CREDIT - only credit-pack purchases can convert the user;
--   ALL         - both can (the same event as fct_client_conversion_events).
-- Each row has the user's conversion event under that filter, with local times in the time
-- zone of the user's own branch. `client_conversion_event_filter` names the filter, so a
-- report filters on it (tally's `conversionFilter` argument).
--
-- Parameter: $1 = T, the as-of instant, RFC 3339 text in UTC as tally stores timestamps
-- (2024-10-27T01:00:00+00:00; a trailing Z is accepted). Nothing else is spliced into the text;
-- tally runs this file as `SELECT * FROM (<this file>) t WHERE … ORDER BY … LIMIT … OFFSET …`
-- with every value bound, so the file is ONE query without a trailing semicolon.
--
-- Run it by hand with the sqlite3 shell (from the directory of tally.db; tally must have
-- filled tally_state.tally_tz_offsets, which `tally load`/`tally demo` and every query do):
--
--   sqlite3 tally.db
--   sqlite> ATTACH 'tally.gym.db' AS gym;
--   sqlite> .parameter set $1 '2024-10-27T01:00:00+00:00'
--   sqlite> .read sql/gym/fct_lead_conversions.sqlite.sql
--
-- Rules (docs: docs/SEMANTICS.md §1 and §3), as in fct_client_conversion_events:
--   * a user exists as of T when dim_user.created_at <= T;
--   * a purchase counts as of T when BOTH its purchase time and its record created_at are
--     <= T; a purchase made before the user's created_at still counts, and so does one made
--     at another branch;
--   * first purchase of a type: smallest purchase time, ties by created_at, then by id in
--     byte order ('B' < 'a'; COLLATE BINARY here, COLLATE "C" in the PostgreSQL twin);
--   * under ALL the conversion event is the earlier of the two firsts by purchase time only,
--     a tie going to MEMBERSHIP; under MEMBERSHIP (USER_CREDIT) it is the first membership
--     (credit pack), whatever the other type did; lead_status is CLIENT when the filter has
--     an event, else LEAD (and the event columns are null);
--   * local times: the UTC instant plus the UTC offset of the USER's branch zone at that
--     instant, written as text YYYY-MM-DDTHH:MM:SS (fractions of a second truncated).
--     SQLite has no time zones: tally_state.tally_tz_offsets(zone, valid_from, valid_to,
--     offset_seconds), filled from chrono-tz by tally::tz::refresh_offsets, holds every
--     zone's offsets (daylight saving included) between its transitions; the offset of
--     an instant is that of the interval with the greatest valid_from <= the instant.
--   * timestamps are stored as text RFC 3339 in UTC (2024-03-01T09:30:00+00:00, a
--     fraction only when non-zero), which sorts in time order, so comparisons and
--     orderings on them are plain text comparisons.
--
-- Steps 1-6 are those of fct_client_conversion_events.sql (the dataset of users and their
-- first purchases); steps 7-11 build the three filtered rows from it. The PostgreSQL twin
-- of this file is fct_lead_conversions.sql, with the same CTEs; both give byte-identical rows.
WITH
-- Step 1 (§1 asOf): the as-of instant T, bound once, as stored timestamps are written
-- (a trailing Z becomes +00:00 so that text comparisons with them hold).
as_of AS (
    SELECT
        CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END AS t
),
-- Step 2 (§3 "one row per user existing at T"): users created at or before T, with the
-- IANA zone of their own branch (LEFT JOIN: a user is never dropped for a missing branch;
-- its local times would then be null).
users AS (
    SELECT
        u.user_id,
        u.branch_id,
        u.created_at,
        b.timezone_id
    FROM "gym"."dim_user" AS u
    CROSS JOIN as_of
    LEFT JOIN "gym"."dim_branch" AS b ON b.branch_id = u.branch_id
    WHERE u.created_at <= as_of.t
),
-- Step 3 (§3 first membership, §1 both cuts): membership purchases known as of T (purchase
-- time AND record created_at <= T), numbered per user by purchase time, then created_at,
-- then user_membership_id in byte order. No condition on the user's created_at or on the
-- purchase's branch.
ranked_memberships AS (
    SELECT
        m.user_id,
        m.user_membership_id,
        m.membership_purchased_at AS purchased_at,
        m.created_at,
        m.membership_purchase_details ->> 'name' AS name,
        m.membership_purchase_details ->> 'source' AS source,
        ROW_NUMBER() OVER (
            PARTITION BY m.user_id
            ORDER BY
                m.membership_purchased_at,
                m.created_at,
                m.user_membership_id COLLATE BINARY
        ) AS rn
    FROM "gym"."fct_membership_purchases" AS m
    CROSS JOIN as_of
    WHERE m.membership_purchased_at <= as_of.t
      AND m.created_at <= as_of.t
),
-- Step 4: the first membership of each user (at most one row per user).
first_membership AS (
    SELECT user_id, user_membership_id, purchased_at, created_at, name, source
    FROM ranked_memberships
    WHERE rn = 1
),
-- Step 5 (§3 first credit pack, §1 both cuts): the same for credit packs, ordered by
-- credit_pack_purchased_at, created_at, then credit_pack_id in byte order.
ranked_credit_packs AS (
    SELECT
        c.user_id,
        c.credit_pack_id,
        c.credit_pack_purchased_at AS purchased_at,
        c.created_at,
        c.credit_pack_purchase_details ->> 'name' AS name,
        c.credit_pack_purchase_details ->> 'source' AS source,
        ROW_NUMBER() OVER (
            PARTITION BY c.user_id
            ORDER BY
                c.credit_pack_purchased_at,
                c.created_at,
                c.credit_pack_id COLLATE BINARY
        ) AS rn
    FROM "gym"."fct_credit_pack_purchases" AS c
    CROSS JOIN as_of
    WHERE c.credit_pack_purchased_at <= as_of.t
      AND c.created_at <= as_of.t
),
-- Step 6: the first credit pack of each user (at most one row per user).
first_credit_pack AS (
    SELECT user_id, credit_pack_id, purchased_at, created_at, name, source
    FROM ranked_credit_packs
    WHERE rn = 1
),
-- Step 7 (§3 fct_lead_conversions): the three conversion filters, with their rank for a
-- stable row order (MEMBERSHIP, USER_CREDIT, ALL).
filters (conversion_filter, filter_rank) AS (
    VALUES ('MEMBERSHIP', 1), ('USER_CREDIT', 2), ('ALL', 3)
),
-- Step 8: every user times every filter (exactly three rows per user), with the type of
-- the conversion event under that filter:
--   MEMBERSHIP  -> MEMBERSHIP when the user has a first membership, else null;
--   USER_CREDIT -> USER_CREDIT when the user has a first credit pack, else null;
--   ALL         -> the earlier first by purchase time, a tie going to MEMBERSHIP.
conversions AS (
    SELECT
        u.user_id,
        u.branch_id,
        u.created_at,
        u.timezone_id,
        f.conversion_filter,
        f.filter_rank,
        fm.user_membership_id AS m_id,
        fm.created_at AS m_created_at,
        fm.name AS m_name,
        fm.source AS m_source,
        fc.credit_pack_id AS c_id,
        fc.created_at AS c_created_at,
        fc.name AS c_name,
        fc.source AS c_source,
        CASE f.conversion_filter
            WHEN 'MEMBERSHIP' THEN
                CASE WHEN fm.user_id IS NOT NULL THEN 'MEMBERSHIP' END
            WHEN 'USER_CREDIT' THEN
                CASE WHEN fc.user_id IS NOT NULL THEN 'USER_CREDIT' END
            ELSE
                CASE
                    WHEN fm.user_id IS NOT NULL
                         AND (fc.user_id IS NULL OR fm.purchased_at <= fc.purchased_at)
                        THEN 'MEMBERSHIP'
                    WHEN fc.user_id IS NOT NULL
                        THEN 'USER_CREDIT'
                END
        END AS event_type
    FROM users AS u
    CROSS JOIN filters AS f
    LEFT JOIN first_membership AS fm ON fm.user_id = u.user_id
    LEFT JOIN first_credit_pack AS fc ON fc.user_id = u.user_id
),
-- Step 9 (§3 event columns): the details of the chosen conversion event under the row's
-- filter, taken from the first membership or the first credit pack (all null for a LEAD).
-- The event's created_at is that of the purchase RECORD.
events AS (
    SELECT
        c.*,
        CASE c.event_type WHEN 'MEMBERSHIP' THEN c.m_id WHEN 'USER_CREDIT' THEN c.c_id END
            AS event_id,
        CASE c.event_type WHEN 'MEMBERSHIP' THEN c.m_created_at WHEN 'USER_CREDIT' THEN c.c_created_at END
            AS event_created_at,
        CASE c.event_type WHEN 'MEMBERSHIP' THEN c.m_name WHEN 'USER_CREDIT' THEN c.c_name END
            AS event_name,
        CASE c.event_type WHEN 'MEMBERSHIP' THEN c.m_source WHEN 'USER_CREDIT' THEN c.c_source END
            AS event_source
    FROM conversions AS c
)
-- Step 10 (figure 1.4.2): the output columns. Every local time is the UTC instant seen in
-- the zone of the USER's branch (timezone_id), also for purchases made at another branch:
-- the UTC wall-clock time (first 19 characters, fraction dropped) plus the zone's offset at
-- that instant (looked up in tally_state.tally_tz_offsets), formatted as text YYYY-MM-DDTHH:MM:SS.
SELECT
    user_id,
    branch_id,
    strftime('%Y-%m-%dT%H:%M:%S', substr(e.created_at, 1, 19), (
        SELECT o.offset_seconds || ' seconds' FROM tally_state.tally_tz_offsets AS o
        WHERE o.zone = e.timezone_id AND o.valid_from <= e.created_at
        ORDER BY o.valid_from DESC LIMIT 1))
        AS local_user_created_at,
    CASE WHEN event_type IS NULL THEN 'LEAD' ELSE 'CLIENT' END AS lead_status,
    event_type AS client_conversion_event_type,
    event_id AS client_conversion_event_id,
    strftime('%Y-%m-%dT%H:%M:%S', substr(e.event_created_at, 1, 19), (
        SELECT o.offset_seconds || ' seconds' FROM tally_state.tally_tz_offsets AS o
        WHERE o.zone = e.timezone_id AND o.valid_from <= e.event_created_at
        ORDER BY o.valid_from DESC LIMIT 1))
        AS client_conversion_event_local_created_at,
    event_name AS client_conversion_event_name,
    event_source AS client_conversion_event_source,
    conversion_filter AS client_conversion_event_filter
FROM events AS e
-- Step 11: a stable order for direct runs (user id in byte order, then MEMBERSHIP,
-- USER_CREDIT, ALL); tally re-orders outside.
ORDER BY user_id COLLATE BINARY, filter_rank

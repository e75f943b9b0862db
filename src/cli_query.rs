//! `tally query`: run a GraphQL document in-process and print JSON or CSV.

use std::process::ExitCode;

use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};

use crate::error::Error;

/// Output formats of `tally query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The GraphQL response as pretty JSON.
    Json,
    /// The first list in the result, one row per element, nested fields as `a.b` columns.
    Csv,
}

/// Runs `document` against the database and prints the result on stdout.
///
/// Errors in the response are printed on stderr and make the exit code non-zero.
pub async fn run(
    db: DatabaseConnection,
    models: Vec<crate::semantic::Model>,
    document: &str,
    variables: Option<Value>,
    format: Format,
) -> Result<ExitCode, Error> {
    let schema = crate::graphql::build_with(Some(db), models)
        .map_err(|e| Error::Config(format!("the GraphQL schema is broken: {e}")))?;
    let mut request = async_graphql::Request::new(document);
    if let Some(vars) = variables {
        if !vars.is_object() {
            return Err(Error::Input("--vars must be a JSON object".to_owned()));
        }
        request = request.variables(async_graphql::Variables::from_json(vars));
    }
    let response = schema.execute(request).await;
    let json = serde_json::to_value(&response)
        .map_err(|e| Error::Input(format!("cannot encode the response: {e}")))?;
    let failed = !response.errors.is_empty();
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&json)
                .map_err(|e| Error::Input(format!("cannot encode the response: {e}")))?;
            print_out(&format!("{text}\n"))?;
        }
        Format::Csv => {
            if failed {
                for e in &response.errors {
                    eprintln!("error: {}", e.message);
                }
                return Ok(ExitCode::FAILURE);
            }
            let data = json.get("data").cloned().unwrap_or(Value::Null);
            let Some(list) = first_list(&data) else {
                return Err(Error::Input(
                    "the result holds no list to write as CSV".to_owned(),
                ));
            };
            let mut out = csv::Writer::from_writer(Vec::new());
            write_csv(&mut out, list)?;
            let bytes = out.into_inner().map_err(|e| Error::Io {
                context: "writing CSV".to_owned(),
                source: e.into_error(),
            })?;
            print_out(&String::from_utf8_lossy(&bytes))?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes `text` to standard output. A reader that went away (`tally query … | head`) ends
/// the output quietly rather than failing.
pub fn print_out(text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "writing the result to standard output".to_owned(),
            source,
        }),
        _ => Ok(()),
    }
}

/// The first list found in a depth-first walk of the result, in field order.
pub fn first_list(value: &Value) -> Option<&Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.values().find_map(first_list),
        _ => None,
    }
}

/// One CSV row: `(column, text)` cells in order.
type Cells = Vec<(String, String)>;

fn key(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_owned()
    } else {
        format!("{prefix}.{k}")
    }
}

/// Flattens a value into rows: object fields become `a.b` columns; a nested list of objects
/// becomes one row per element, with the parent's columns repeated (sibling lists multiply);
/// an empty one leaves its columns blank; a list of scalars is written as JSON text.
fn flatten_rows(prefix: &str, value: &Value) -> Vec<Cells> {
    match value {
        Value::Object(map) => {
            let mut rows: Vec<Cells> = vec![Vec::new()];
            for (k, v) in map {
                let child = flatten_rows(&key(prefix, k), v);
                if child.is_empty() {
                    continue;
                }
                rows = rows
                    .iter()
                    .flat_map(|r| {
                        child.iter().map(move |c| {
                            let mut row = r.clone();
                            row.extend(c.iter().cloned());
                            row
                        })
                    })
                    .collect();
            }
            rows
        }
        Value::Array(items) if items.iter().all(Value::is_object) => {
            items.iter().flat_map(|i| flatten_rows(prefix, i)).collect()
        }
        Value::Array(_) => vec![vec![(prefix.to_owned(), value.to_string())]],
        Value::Null => vec![vec![(prefix.to_owned(), String::new())]],
        Value::String(s) => vec![vec![(prefix.to_owned(), s.clone())]],
        other => vec![vec![(prefix.to_owned(), other.to_string())]],
    }
}

/// Writes a list of objects as CSV, nested lists exploded into rows (see `flatten_rows`): the
/// header is the union of the flattened keys, in order of first appearance.
pub fn write_csv<W: std::io::Write>(out: &mut csv::Writer<W>, list: &[Value]) -> Result<(), Error> {
    let rows: Vec<Cells> = list
        .iter()
        .flat_map(|item| match item {
            Value::Object(_) => flatten_rows("", item),
            other => flatten_rows("value", other),
        })
        .collect();
    let mut header: Vec<String> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    let csv_err = |e: csv::Error| Error::Input(format!("writing CSV: {e}"));
    out.write_record(&header).map_err(csv_err)?;
    for row in rows {
        let map: Map<String, Value> = row
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let record: Vec<&str> = header
            .iter()
            .map(|h| map.get(h).and_then(Value::as_str).unwrap_or(""))
            .collect();
        out.write_record(&record).map_err(csv_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(value: &Value) -> String {
        let list = first_list(value).expect("a list");
        let mut out = csv::Writer::from_writer(Vec::new());
        write_csv(&mut out, list).expect("csv");
        String::from_utf8(out.into_inner().expect("flush")).expect("utf-8")
    }

    #[test]
    fn nested_lists_become_rows_with_parent_columns() {
        let data = serde_json::json!({ "sources": [
            { "name": "a", "tables": [ { "name": "x", "rowCount": 1 }, { "name": "y", "rowCount": 2 } ] },
            { "name": "b", "tables": [ { "name": "z", "rowCount": null } ] },
        ]});
        assert_eq!(
            csv_of(&data),
            "name,tables.name,tables.rowCount\na,x,1\na,y,2\nb,z,\n"
        );
    }

    #[test]
    fn objects_flatten_to_dotted_columns_and_scalar_lists_to_json() {
        let data = serde_json::json!({ "rows": [
            { "id": 1, "plan": { "planId": "p1" }, "tags": ["a", "b"] },
            { "id": 2, "plan": null, "tags": [] },
        ]});
        assert_eq!(
            csv_of(&data),
            "id,plan.planId,tags,plan\n1,p1,\"[\"\"a\"\",\"\"b\"\"]\",\n2,,,\n"
        );
    }
}

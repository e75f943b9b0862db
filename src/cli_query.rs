//! `tally query`: run a GraphQL document in-process and print JSON or CSV.

use std::process::ExitCode;

use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};

use crate::cli::Format;
use crate::error::Error;

/// Runs `document` against the database and prints the result on stdout.
///
/// Errors in the response are printed on stderr and make the exit code non-zero.
pub async fn run(
    db: DatabaseConnection,
    document: &str,
    variables: Option<Value>,
    format: Format,
) -> Result<ExitCode, Error> {
    let schema = crate::graphql::build(Some(db))
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
            println!("{text}");
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
            let mut out = csv::Writer::from_writer(std::io::stdout().lock());
            write_csv(&mut out, list)?;
            out.flush().map_err(|source| Error::Io {
                context: "writing CSV".to_owned(),
                source,
            })?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The first list found in a depth-first walk of the result, in field order.
pub fn first_list(value: &Value) -> Option<&Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.values().find_map(first_list),
        _ => None,
    }
}

/// Flattens an object into `a.b` columns; lists inside it are written as JSON text.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), String::new())),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Array(_) => out.push((prefix.to_owned(), value.to_string())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Writes a list of objects as CSV: the header is the union of the flattened keys, in order of
/// first appearance.
pub fn write_csv<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    list: &[Value],
) -> Result<(), Error> {
    let rows: Vec<Vec<(String, String)>> = list
        .iter()
        .map(|item| {
            let mut cells = Vec::new();
            match item {
                Value::Object(_) => flatten("", item, &mut cells),
                other => flatten("value", other, &mut cells),
            }
            cells
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

//! Field-by-field validation of JSON request bodies and query strings, collecting every problem so
//! a client learns all of them at once (`invalid_request` with `details`).

use serde_json::{Map, Value};

use crate::error::FieldProblem;

/// A request body as an object. An empty body has already been turned into `{}` by the server.
pub(crate) fn object(body: Value) -> Result<Map<String, Value>, Vec<FieldProblem>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(vec![FieldProblem::new("body", "must be a JSON object")]),
    }
}

/// The parsed value when no problem was found, else every problem.
pub(crate) fn finish<T>(problems: Vec<FieldProblem>, value: T) -> Result<T, Vec<FieldProblem>> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems)
    }
}

/// A field that must be absent (or `null`) or an integer in `min..=max`.
pub(crate) fn opt_int(
    map: &Map<String, Value>,
    field: &str,
    min: u64,
    max: u64,
    problems: &mut Vec<FieldProblem>,
) -> Option<u64> {
    match map.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                problems.push(FieldProblem::new(
                    field,
                    format!("must be an integer from {min} to {max}"),
                ));
                None
            }
        },
    }
}

/// A field that must be absent (or `null`) or a non-empty string of at most `max_chars` characters.
pub(crate) fn opt_string(
    map: &Map<String, Value>,
    field: &str,
    max_chars: usize,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    match map.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => {
            problems.push(FieldProblem::new(field, "must not be empty"));
            None
        }
        Some(Value::String(s)) if s.chars().count() > max_chars => {
            problems.push(FieldProblem::new(
                field,
                format!("must be at most {max_chars} characters"),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push(FieldProblem::new(field, "must be a string"));
            None
        }
    }
}

/// An integer query parameter in `min..=max`.
pub(crate) fn query_int(
    value: &str,
    field: &str,
    min: u64,
    max: u64,
    problems: &mut Vec<FieldProblem>,
) -> Option<u64> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => Some(n),
        _ => {
            problems.push(FieldProblem::new(
                field,
                format!("must be an integer from {min} to {max}"),
            ));
            None
        }
    }
}

/// A boolean query parameter: `true`/`1`/empty (present) or `false`/`0`.
pub(crate) fn query_bool(value: &str, field: &str, problems: &mut Vec<FieldProblem>) -> bool {
    match value {
        "" | "true" | "1" | "yes" => true,
        "false" | "0" | "no" => false,
        _ => {
            problems.push(FieldProblem::new(field, "must be true or false"));
            false
        }
    }
}

//! Conversions between [`PyValue`] and `serde_json::Value` (feature `serde_json`).
//!
//! JSON has fewer types than Python, so the mapping is:
//!
//! | Python                 | JSON                                   |
//! |------------------------|----------------------------------------|
//! | `None`, `True`/`False` | `null`, `true`/`false`                 |
//! | `int`, `float`         | number (non-finite floats are errors)  |
//! | `str`                  | string                                 |
//! | `list`, `tuple`        | array (written back as a list)         |
//! | `dict`                 | object; `str` keys, `int`/`float` keys become their `repr` |
//! | `bytes`                | error                                  |

use serde_json::{Map, Number, Value};

use crate::{PyValue, repr_float};

/// Why a [`PyValue`] has no JSON form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(String);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// Converts a Python value to JSON (see the [module docs](self) for the mapping).
pub fn to_json(v: &PyValue) -> Result<Value, JsonError> {
    Ok(match v {
        PyValue::None => Value::Null,
        PyValue::Bool(b) => Value::Bool(*b),
        PyValue::Int(i) => Value::Number((*i).into()),
        PyValue::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| JsonError(format!("{} has no JSON form", repr_float(*f))))?,
        PyValue::Str(s) => Value::String(s.clone()),
        PyValue::Bytes(_) => return Err(JsonError("bytes have no JSON form".into())),
        PyValue::List(items) | PyValue::Tuple(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        PyValue::Dict(items) => Value::Object(dict_to_json(items)?),
    })
}

/// Converts the items of a Python dict to a JSON object (keys must be str, int or float).
pub fn dict_to_json(items: &[(PyValue, PyValue)]) -> Result<Map<String, Value>, JsonError> {
    let mut m = Map::new();
    for (k, v) in items {
        let key = match k {
            PyValue::Str(s) => s.clone(),
            PyValue::Int(i) => i.to_string(),
            PyValue::Float(f) => repr_float(*f),
            other => {
                return Err(JsonError(format!(
                    "a dict key of type {} has no JSON form",
                    other.type_name()
                )));
            }
        };
        m.insert(key, to_json(v)?);
    }
    Ok(m)
}

/// Converts JSON to a Python value (arrays become lists, objects dicts with str keys).
///
/// Integers beyond the 64-bit signed range become floats.
pub fn from_json(v: &Value) -> PyValue {
    match v {
        Value::Null => PyValue::None,
        Value::Bool(b) => PyValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => PyValue::Int(i),
            None => PyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => PyValue::Str(s.clone()),
        Value::Array(a) => PyValue::List(a.iter().map(from_json).collect()),
        Value::Object(m) => object_to_py(m),
    }
}

/// Converts a JSON object to a Python dict with str keys.
pub fn object_to_py(m: &Map<String, Value>) -> PyValue {
    PyValue::Dict(
        m.iter()
            .map(|(k, v)| (PyValue::Str(k.clone()), from_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    #[test]
    fn round_trip() {
        let v = parse("{'a': (1, 2.5), 'b': [None, True], 3: 'x', 'c': {'d': -7}}").unwrap();
        let j = to_json(&v).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"a": [1, 2.5], "b": [null, true], "3": "x", "c": {"d": -7}})
        );
        assert_eq!(
            from_json(&j).repr(),
            "{'3': 'x', 'a': [1, 2.5], 'b': [None, True], 'c': {'d': -7}}"
        );
    }

    #[test]
    fn rejects_what_json_cannot_hold() {
        assert!(to_json(&parse("b'x'").unwrap()).is_err());
        assert!(to_json(&parse("{(1, 2): 3}").unwrap()).is_err());
        assert!(to_json(&PyValue::Float(f64::INFINITY)).is_err());
    }
}

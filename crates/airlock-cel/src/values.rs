//! The evidence document as CEL values: each top-level field a variable,
//! objects as maps, counts as `int`. Every string is a value: nothing from
//! the document is ever parsed as CEL.

use std::sync::Arc;

use airlock_model::evidence::Evidence;
use cel_core::{MapKey, Value, ValueMap};
use serde_json::Value as Json;

/// The document's top-level fields and their values.
pub fn of(evidence: &Evidence) -> Vec<(String, Value)> {
    let Ok(Json::Object(fields)) = serde_json::to_value(evidence) else {
        // Serializing plain structs of strings and numbers cannot fail.
        return Vec::new();
    };
    fields
        .into_iter()
        .map(|(name, value)| (name, convert(value)))
        .collect()
}

fn convert(value: Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            // A count past i64::MAX cannot happen; it saturates rather than wraps.
            (None, Some(_)) => Value::Int(i64::MAX),
            (None, None) => Value::Double(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::String(Arc::from(s)),
        Json::Array(items) => Value::List(items.into_iter().map(convert).collect()),
        Json::Object(map) => Value::Map(Arc::new(ValueMap::from_entries(
            map.into_iter()
                .map(|(k, v)| (MapKey::String(Arc::from(k)), convert(v))),
        ))),
    }
}

//! The evidence schema declared to cel-core's checker. Each object of
//! [`SCHEMA`] becomes a message type named after its path (`evidence.diff`,
//! `evidence.gates` for the elements of `gates`), so that a field the
//! document does not have is a type error with its position. Nothing is
//! ever constructed from these types: at run time the document is bound as
//! maps ([`crate::values`]).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use airlock_model::evidence::{Field, FieldType, SCHEMA};
use cel_core::{
    CelType, EvalError, MessageValue, ProtoRegistry, ProtoTypeResolver, ResolvedProtoType,
    StructFieldValue, Value,
};

/// Message types and their fields, from [`SCHEMA`].
#[derive(Debug)]
pub struct Registry {
    fields: BTreeMap<(String, String), CelType>,
    messages: BTreeSet<String>,
    variables: Vec<(String, CelType)>,
}

impl Registry {
    pub fn new() -> Registry {
        let mut registry = Registry {
            fields: BTreeMap::new(),
            messages: BTreeSet::new(),
            variables: Vec::new(),
        };
        for field in SCHEMA {
            let ty = registry.declare(&format!("evidence.{}", field.name), &field.ty);
            registry.variables.push((field.name.to_string(), ty));
        }
        registry
    }

    /// The document's top-level fields, as CEL variables.
    pub fn variables(&self) -> Vec<(String, CelType)> {
        self.variables.clone()
    }

    /// The CEL type of `ty`, declaring the message types it holds under
    /// names from `path`.
    fn declare(&mut self, path: &str, ty: &FieldType) -> CelType {
        match ty {
            FieldType::Bool => CelType::Bool,
            FieldType::Int => CelType::Int,
            FieldType::Double => CelType::Double,
            FieldType::String => CelType::String,
            FieldType::List(inner) => CelType::List(Arc::new(self.declare(path, inner))),
            FieldType::Object(fields) => {
                self.messages.insert(path.to_string());
                for Field { name, ty } in fields.iter() {
                    let field_ty = self.declare(&format!("{path}.{name}"), ty);
                    self.fields
                        .insert((path.to_string(), name.to_string()), field_ty);
                }
                CelType::Message(Arc::from(path))
            }
        }
    }
}

/// Whether `path` (`diff.paths`, `traces`) names a list of the document.
pub fn is_list(path: &str) -> bool {
    let mut fields = SCHEMA;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(field) = fields.iter().find(|f| f.name == part) else {
            return false;
        };
        match (&field.ty, parts.peek()) {
            (FieldType::List(_), None) => return true,
            (FieldType::Object(inner), Some(_)) => fields = inner,
            _ => return false,
        }
    }
    false
}

impl ProtoTypeResolver for Registry {
    fn get_field_type(&self, message: &str, field: &str) -> Option<CelType> {
        self.fields
            .get(&(message.to_string(), field.to_string()))
            .cloned()
    }

    fn has_message(&self, message: &str) -> bool {
        self.messages.contains(message)
    }

    fn is_extension(&self, _message: &str, _ext_name: &str) -> bool {
        false
    }

    fn get_enum_value(&self, _enum_name: &str, _value_name: &str) -> Option<i32> {
        None
    }

    fn resolve_qualified(&self, _parts: &[&str], _container: &str) -> Option<ResolvedProtoType> {
        None
    }

    fn resolve_message_name(&self, _name: &str, _container: &str) -> Option<String> {
        None
    }

    fn message_field_names(&self, message: &str) -> Option<Vec<String>> {
        self.has_message(message).then(|| {
            self.fields
                .keys()
                .filter(|(m, _)| m == message)
                .map(|(_, f)| f.clone())
                .collect()
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The document is bound as maps, so none of these is reached by an
/// expression that type-checked; each answers with an error value.
impl ProtoRegistry for Registry {
    fn construct_message(
        &self,
        type_name: &str,
        _fields: &[StructFieldValue],
        _strong_enums: bool,
    ) -> Value {
        Value::error(EvalError::from(
            format!("`{type_name}` values cannot be constructed").as_str(),
        ))
    }

    fn message_field_access(
        &self,
        _msg: &dyn MessageValue,
        field: &str,
        _optional: bool,
        _strong_enums: bool,
    ) -> Value {
        Value::error(EvalError::from(format!("no field `{field}`").as_str()))
    }

    fn message_has_field(&self, _msg: &dyn MessageValue, _field: &str) -> Value {
        Value::Bool(false)
    }

    fn get_extension_value(
        &self,
        _msg: &dyn MessageValue,
        _ext_name: &str,
        _optional: bool,
        _strong_enums: bool,
    ) -> Option<Value> {
        None
    }

    fn has_extension(&self, _msg: &dyn MessageValue, _ext_name: &str) -> Option<bool> {
        None
    }
}

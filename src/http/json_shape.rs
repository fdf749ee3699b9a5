//! Reads a JSON body in two steps, each with errors that are data rather than messages: the text becomes a
//! JSON value (refusing a key given twice in one object), then the value becomes the request type through a
//! deserializer whose error type is `ShapeError`. serde reports a missing field, a wrong type and an unknown
//! variant through that type's constructors, so the field and what was expected arrive as values, and nothing
//! depends on how serde_json words its messages.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor,
    value::{MapDeserializer, SeqDeserializer},
};
use serde_json::{Map, Value};

/// Why a JSON value does not have the shape of the request type.
#[derive(Debug)]
pub enum ShapeError {
    /// A required field is absent.
    Missing(&'static str),
    /// A value of another type, or not one of the allowed values; `expected` says what would do.
    Wrong { expected: String },
    /// Anything a type's own deserializer refused with a message, which is not shown.
    Refused,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(field) => write!(formatter, "missing field {field}"),
            Self::Wrong { expected } => write!(formatter, "expected {expected}"),
            Self::Refused => formatter.write_str("refused"),
        }
    }
}

impl std::error::Error for ShapeError {}

impl de::Error for ShapeError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Self::Refused
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field)
    }

    fn invalid_type(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::Wrong {
            expected: expected.to_string(),
        }
    }

    fn invalid_value(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::Wrong {
            expected: expected.to_string(),
        }
    }

    fn invalid_length(_: usize, expected: &dyn de::Expected) -> Self {
        Self::Wrong {
            expected: expected.to_string(),
        }
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Self::Wrong {
            expected: format!("one of {}", expected.join(", ")),
        }
    }
}

/// Reads `value` as a `T`; the error names the path of the value that did not fit.
pub fn read<T: DeserializeOwned>(value: Value) -> Result<T, serde_path_to_error::Error<ShapeError>> {
    serde_path_to_error::deserialize(JsonValue(value))
}

/// The text as a JSON value. A key given twice in one object is refused (a data error), since the two readers
/// of a request (a proxy, this service) could each take another of its values.
pub fn parse_text(text: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<UniqueKeys>(text).map(|unique| unique.0)
}

/// A JSON value read with a check that no object repeats a key.
struct UniqueKeys(Value);

impl<'de> de::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(UniqueKeys(value)) = items.next_element()? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let UniqueKeys(value) = entries.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("a key is given twice"));
            }
        }
        Ok(Value::Object(map))
    }
}

/// A JSON value as a deserializer with `ShapeError` for its errors.
struct JsonValue(Value);

impl<'de> IntoDeserializer<'de, ShapeError> for JsonValue {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for JsonValue {
    type Error = ShapeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(value),
            Value::Number(number) => match (number.as_u64(), number.as_i64(), number.as_f64()) {
                (Some(value), _, _) => visitor.visit_u64(value),
                (None, Some(value), _) => visitor.visit_i64(value),
                (None, None, Some(value)) => visitor.visit_f64(value),
                (None, None, None) => Err(de::Error::custom("a number out of range")),
            },
            Value::String(value) => visitor.visit_string(value),
            Value::Array(items) => {
                let mut items = SeqDeserializer::new(items.into_iter().map(JsonValue));
                let value = visitor.visit_seq(&mut items)?;
                items.end()?;
                Ok(value)
            }
            Value::Object(entries) => {
                let mut entries = MapDeserializer::new(entries.into_iter().map(|(key, value)| (key, JsonValue(value))));
                let value = visitor.visit_map(&mut entries)?;
                entries.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(JsonValue(other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        match self.0 {
            // The request types' enums are names only.
            Value::String(name) => visitor.visit_enum(name.into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, ShapeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(value) => de::Unexpected::Bool(*value),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(value) => de::Unexpected::Str(value),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Purpose {
        Login,
    }

    #[derive(Debug, Deserialize)]
    struct Request {
        #[allow(dead_code)]
        email: String,
        #[allow(dead_code)]
        purpose: Purpose,
        #[allow(dead_code)]
        name: Option<String>,
        #[allow(dead_code)]
        count: Option<u32>,
    }

    fn error_of(text: &str) -> (String, ShapeError) {
        let error = read::<Request>(parse_text(text.as_bytes()).unwrap()).unwrap_err();
        (error.path().to_string(), error.into_inner())
    }

    #[test]
    fn errors_are_data() {
        assert!(read::<Request>(parse_text(br#"{"email": "a", "purpose": "login", "name": null}"#).unwrap()).is_ok());
        assert!(matches!(
            error_of(r#"{"purpose": "login"}"#).1,
            ShapeError::Missing("email")
        ));
        let (path, error) = error_of(r#"{"email": 5, "purpose": "login"}"#);
        assert_eq!(path, "email");
        assert!(matches!(error, ShapeError::Wrong { expected } if expected == "a string"));
        let (path, error) = error_of(r#"{"email": "a", "purpose": "totp"}"#);
        assert_eq!(path, "purpose");
        assert!(matches!(error, ShapeError::Wrong { expected } if expected == "one of login"));
        assert!(matches!(
            error_of(r#"{"email": "a", "purpose": 5}"#).1,
            ShapeError::Wrong { .. }
        ));
        assert!(matches!(
            error_of(r#"{"email": "a", "purpose": "login", "count": -1}"#).1,
            ShapeError::Wrong { .. }
        ));
        assert!(matches!(
            error_of(r#"["a", "login"]"#).1,
            ShapeError::Wrong { .. } | ShapeError::Missing(_)
        ));
    }

    #[test]
    fn a_key_given_twice_is_refused_as_data() {
        let error = parse_text(br#"{"a": {"b": 1, "b": 2}}"#).unwrap_err();
        assert!(error.is_data());
        assert!(parse_text(br#"{"a": {"b": 1}, "b": 2}"#).is_ok());
        assert!(parse_text(b"{\"a\": ").unwrap_err().is_eof());
    }
}

//! Query strings read as Discord reads them (developers/reference "Boolean Query Strings",
//! "Array Query Strings"): booleans as `True`/`true`/`1` and `False`/`false`/`0`, numbers with
//! surrounding whitespace or quotes tolerated, arrays as repeated names (`id=1&id=2`, also
//! `id[]=1`), the first value winning where one is expected, and an empty value (`?before=`)
//! reading as absent for optional parameters. Every route's `Q<T>` goes through [`parse`], so
//! one table of rules serves them all; errors carry Discord's codes at the parameter's name.
use std::fmt;

use serde::de::value::SeqDeserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// A parameter that does not read as its type: Discord's error code and message for it.
#[derive(Debug)]
pub(crate) struct ParamError {
    /// The `_errors[].code` (`BASE_TYPE_BOOLEAN`, `NUMBER_TYPE_COERCE`, ...).
    pub code: &'static str,
    /// The `_errors[].message`.
    pub message: String,
    /// Set for a missing required parameter: its name (serde reports it from the parent).
    pub missing: Option<&'static str>,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ParamError {
            code: "BASE_TYPE_INVALID",
            message: message.to_string(),
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        ParamError {
            code: "BASE_TYPE_REQUIRED",
            message: "This field is required".into(),
            missing: Some(field),
        }
    }
}

/// Discord's boolean spellings; `None` for anything else.
pub(crate) fn boolean(value: &str) -> Option<bool> {
    match value {
        "true" | "True" | "1" => Some(true),
        "false" | "False" | "0" => Some(false),
        _ => None,
    }
}

/// A number's text as Discord reads it: without surrounding whitespace or one pair of double
/// quotes (`" 50 "`, `"50"` → `50`).
pub(crate) fn number_text(value: &str) -> &str {
    let text = value.trim();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// Reads `raw` (a query string without `?`, or a form body) into `T`; the error names the
/// parameter (its path) and says why.
pub(crate) fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, (String, ParamError)> {
    finish(&Params::parse(raw))
}

fn finish<T: DeserializeOwned>(params: &Params) -> Result<T, (String, ParamError)> {
    serde_path_to_error::deserialize(ParamsDeserializer(params)).map_err(|err| {
        let path = err.path().to_string();
        let mut inner = err.into_inner();
        let path = match inner.missing.take() {
            Some(field) => field.to_string(),
            None if path == "." => String::new(),
            None => path,
        };
        (path, inner)
    })
}

/// Reads form fields (a multipart body's text fields) into `T` with the rules of [`parse`].
pub(crate) fn parse_fields<T: DeserializeOwned>(
    fields: Vec<(String, String)>,
) -> Result<T, (String, ParamError)> {
    finish(&Params::from_pairs(fields))
}

/// Values grouped by name, names in order of first appearance.
struct Params(Vec<(String, Vec<String>)>);

impl Params {
    fn parse(raw: &[u8]) -> Params {
        Params::from_pairs(
            form_urlencoded::parse(raw)
                .map(|(name, value)| (name.into_owned(), value.into_owned())),
        )
    }

    fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Params {
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for (name, value) in pairs {
            let name = name.strip_suffix("[]").unwrap_or(&name);
            match grouped.iter_mut().find(|(known, _)| known == name) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name.to_string(), vec![value])),
            }
        }
        Params(grouped)
    }
}

struct ParamsDeserializer<'a>(&'a Params);

impl<'de> de::Deserializer<'de> for ParamsDeserializer<'_> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let entries = self
            .0
             .0
            .iter()
            .map(|(name, values)| (name.as_str(), ParamValue(values)));
        visitor.visit_map(de::value::MapDeserializer::new(entries))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// Every value given for one name (at least one).
struct ParamValue<'a>(&'a [String]);

impl<'de> IntoDeserializer<'de, ParamError> for ParamValue<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl ParamValue<'_> {
    fn first(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }

    /// The first value without surrounding whitespace or one pair of double quotes.
    fn number_text(&self) -> &str {
        number_text(self.first())
    }

    fn number<N: std::str::FromStr>(&self, kind: &str) -> Result<N, ParamError> {
        self.number_text().parse().map_err(|_| ParamError {
            code: "NUMBER_TYPE_COERCE",
            message: format!("Value \"{}\" is not {kind}.", self.first()),
            missing: None,
        })
    }
}

macro_rules! numbers {
    ($($method:ident $visit:ident $kind:literal),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
            visitor.$visit(self.number($kind)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for ParamValue<'_> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.0 {
            // Snowflakes (read through `deserialize_any`) are numbers: quotes and padding go.
            [one] => {
                let digits = number_text(one);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    visitor.visit_str(digits)
                } else {
                    visitor.visit_str(one)
                }
            }
            many => self.visit_values(many, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match boolean(self.first()) {
            Some(value) => visitor.visit_bool(value),
            None => Err(ParamError {
                code: "BASE_TYPE_BOOLEAN",
                message: format!("Value \"{}\" is not boolean.", self.first()),
                missing: None,
            }),
        }
    }

    numbers! {
        deserialize_i8 visit_i8 "int", deserialize_i16 visit_i16 "int",
        deserialize_i32 visit_i32 "int", deserialize_i64 visit_i64 "int",
        deserialize_u8 visit_u8 "int", deserialize_u16 visit_u16 "int",
        deserialize_u32 visit_u32 "int", deserialize_u64 visit_u64 "int",
        deserialize_f32 visit_f32 "float", deserialize_f64 visit_f64 "float",
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        if self.0.iter().all(String::is_empty) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.visit_values(self.0, visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_str(self.first())
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_str(self.first())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_enum(self.first().into_deserializer())
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit_struct tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl ParamValue<'_> {
    fn visit_values<'de, V: Visitor<'de>>(
        &self,
        values: &[String],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let items = values.iter().map(std::slice::from_ref).map(ParamValue);
        let mut seq = SeqDeserializer::new(items);
        let value = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    use crate::backend::snowflake::Snowflake;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Query {
        with_response: bool,
        wait: Option<bool>,
        limit: Option<u32>,
        before: Option<Snowflake>,
        id: Vec<Snowflake>,
        name: Option<String>,
    }

    fn query(raw: &str) -> Result<Query, (String, ParamError)> {
        parse(raw.as_bytes())
    }

    #[test]
    fn booleans_take_discords_six_spellings() {
        for (raw, expected) in [
            ("true", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
        ] {
            let parsed = query(&format!("with_response={raw}&wait={raw}")).unwrap();
            assert_eq!(parsed.with_response, expected, "{raw}");
            assert_eq!(parsed.wait, Some(expected), "{raw}");
        }
        for raw in ["yes", "TRUE", "2", "on"] {
            let (path, err) = query(&format!("wait={raw}")).unwrap_err();
            assert_eq!(path, "wait");
            assert_eq!(err.code, "BASE_TYPE_BOOLEAN");
            assert_eq!(err.message, format!("Value \"{raw}\" is not boolean."));
        }
    }

    #[test]
    fn numbers_tolerate_quotes_and_spaces_and_name_the_parameter_when_bad() {
        assert_eq!(query("limit=%2050%20").unwrap().limit, Some(50));
        assert_eq!(query("limit=%2250%22").unwrap().limit, Some(50));
        let (path, err) = query("limit=fifty").unwrap_err();
        assert_eq!((path.as_str(), err.code), ("limit", "NUMBER_TYPE_COERCE"));
        assert_eq!(err.message, "Value \"fifty\" is not int.");
        let (path, _) = query("before=abc").unwrap_err();
        assert_eq!(path, "before");
        assert_eq!(
            query("before=%2212%22").unwrap().before,
            Some(Snowflake(12))
        );
        assert_eq!(
            query("before=%2012%20").unwrap().before,
            Some(Snowflake(12))
        );
        assert_eq!(query("id=%227%22").unwrap().id, vec![Snowflake(7)]);
    }

    #[test]
    fn arrays_are_repeated_names_and_scalars_take_the_first() {
        let parsed = query("id=1&id=2&id[]=3&limit=5&limit=9").unwrap();
        assert_eq!(parsed.id, vec![Snowflake(1), Snowflake(2), Snowflake(3)]);
        assert_eq!(parsed.limit, Some(5));
        assert_eq!(query("id=7").unwrap().id, vec![Snowflake(7)]);
    }

    #[test]
    fn empty_values_are_absent_and_unknown_names_are_ignored() {
        let parsed = query("before=&limit=&name=&unknown=x").unwrap();
        assert_eq!(parsed, Query::default());
        assert_eq!(query("").unwrap(), Query::default());
        assert_eq!(
            query("name=a%20b").unwrap().name.as_deref(),
            Some("a b"),
            "values are percent-decoded"
        );
    }

    #[test]
    fn a_missing_required_parameter_is_named() {
        #[derive(Debug, Deserialize)]
        struct Required {
            #[allow(dead_code)]
            code: String,
        }
        let (path, err) = parse::<Required>(b"other=1").unwrap_err();
        assert_eq!((path.as_str(), err.code), ("code", "BASE_TYPE_REQUIRED"));
    }
}

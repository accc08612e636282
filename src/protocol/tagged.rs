//! Literal `"type"` fields where the SDK puts them.
//!
//! Pydantic writes a model's fields in declaration order, inherited ones first, so the SDK's
//! `"type"` is not always the first key: a thread item is `{id, thread_id, created_at, type, …}`,
//! an attachment `{id, name, mime_type, …, type}`. serde's internal tagging always writes the tag
//! first. [`Injector`] wraps a serializer and writes `"type": <tag>` right after a named field
//! (whether that field was written or skipped), so a plain `#[derive(Serialize)]` struct comes out
//! in the SDK's key order. [`literal_type!`] wires it up for a struct derived with
//! `#[serde(remote = "Self")]`.

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};

/// Implement `Serialize`/`Deserialize` for a `#[serde(remote = "Self")]` struct, writing
/// `"type": $tag` first (`after = None`) or right after the field `after`.
macro_rules! literal_type {
    ($ty:ty, $tag:literal, after = $after:expr) => {
        impl $ty {
            /// The value of this type's `"type"` field on the wire.
            pub const TYPE: &'static str = $tag;
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(
                    self,
                    $crate::protocol::tagged::Injector::new(serializer, $tag, $after),
                )
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$ty>::deserialize(deserializer)
            }
        }
    };
}
pub(crate) use literal_type;

/// A union of self-tagged types: serialized as the inner value, deserialized by its `"type"`
/// (an unknown type kept as raw JSON when the union has an `unknown` variant).
macro_rules! tagged_union {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty), )*
        }
        $( unknown: $(#[$umeta:meta])* $unknown:ident, )?
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
            $( $(#[$umeta])* $unknown(serde_json::Value), )?
        }

        impl $name {
            /// The value of the `"type"` field.
            pub fn type_name(&self) -> &str {
                match self {
                    $( Self::$variant(_) => <$ty>::TYPE, )*
                    $( Self::$unknown(value) => value.get("type").and_then(serde_json::Value::as_str).unwrap_or(""), )?
                }
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(value: $ty) -> Self {
                    Self::$variant(value)
                }
            }
        )*

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(value) => value.serialize(serializer), )*
                    $( Self::$unknown(value) => value.serialize(serializer), )?
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let value = serde_json::Value::deserialize(deserializer)?;
                let tag = $crate::protocol::tagged::type_of(&value, stringify!($name))
                    .map_err(D::Error::custom)?
                    .to_owned();
                $(
                    if tag == <$ty>::TYPE {
                        return serde_json::from_value(value)
                            .map(Self::$variant)
                            .map_err(|e| D::Error::custom(format_args!("{tag}: {e}")));
                    }
                )*
                $( return Ok(Self::$unknown(value)); )?
                #[allow(unreachable_code)]
                Err(D::Error::custom(format_args!(
                    "unknown {} type {tag:?}; expected one of: {}",
                    stringify!($name),
                    [$( <$ty>::TYPE ),*].join(", ")
                )))
            }
        }
    };
}
pub(crate) use tagged_union;

/// A type-first enum with a raw fallback: the derive (with `remote = "Self"`) writes the known
/// variants; an unknown `"type"` is kept as raw JSON in the `Unknown` variant.
macro_rules! open_enum {
    ($ty:ident, [$($tag:literal),* $(,)?]) => {
        impl $ty {
            /// The `"type"` values this version knows.
            pub const KNOWN_TYPES: &'static [&'static str] = &[$($tag),*];
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::Unknown(value) => value.serialize(serializer),
                    known => $ty::serialize(known, serializer),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let value = serde_json::Value::deserialize(deserializer)?;
                let tag = $crate::protocol::tagged::type_of(&value, stringify!($ty))
                    .map_err(D::Error::custom)?;
                if Self::KNOWN_TYPES.contains(&tag) {
                    let tag = tag.to_owned();
                    $ty::deserialize(value).map_err(|e| D::Error::custom(format_args!("{tag}: {e}")))
                } else {
                    Ok(Self::Unknown(value))
                }
            }
        }
    };
}
pub(crate) use open_enum;

/// The `"type"` of a JSON object, or why there is none.
pub(crate) fn type_of<'v>(value: &'v serde_json::Value, what: &str) -> Result<&'v str, String> {
    match value {
        serde_json::Value::Object(map) => match map.get("type") {
            Some(serde_json::Value::String(tag)) => Ok(tag),
            Some(_) => Err(format!("{what}: `type` must be a string")),
            None => Err(format!("{what}: missing field `type`")),
        },
        _ => Err(format!("{what}: expected an object")),
    }
}

/// A serializer that writes `"type": tag` into the struct it serializes, after the field
/// `after` (first when `None`, last when that field never comes).
pub(crate) struct Injector<S> {
    inner: S,
    tag: &'static str,
    after: Option<&'static str>,
}

impl<S> Injector<S> {
    pub(crate) fn new(inner: S, tag: &'static str, after: Option<&'static str>) -> Self {
        Self { inner, tag, after }
    }
}

pub(crate) struct InjectStruct<S: SerializeStruct> {
    inner: S,
    tag: &'static str,
    after: Option<&'static str>,
    written: bool,
}

impl<S: SerializeStruct> InjectStruct<S> {
    fn write_tag(&mut self) -> Result<(), S::Error> {
        if !self.written {
            self.written = true;
            self.inner.serialize_field("type", self.tag)?;
        }
        Ok(())
    }
}

impl<S: SerializeStruct> SerializeStruct for InjectStruct<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.inner.serialize_field(key, value)?;
        if self.after == Some(key) {
            self.write_tag()?;
        }
        Ok(())
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)?;
        if self.after == Some(key) {
            self.write_tag()?;
        }
        Ok(())
    }

    fn end(mut self) -> Result<S::Ok, S::Error> {
        self.write_tag()?;
        self.inner.end()
    }
}

fn not_a_struct<E: ser::Error>() -> E {
    E::custom("a literal `type` can only be added to a struct")
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<$ret, S::Error> {
                Err(not_a_struct())
            }
        )*
    };
}

impl<S: Serializer> Serializer for Injector<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = InjectStruct<S::SerializeStruct>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let mut out = InjectStruct {
            inner: self.inner.serialize_struct(name, len + 1)?,
            tag: self.tag,
            after: self.after,
            written: false,
        };
        if self.after.is_none() {
            out.write_tag()?;
        }
        Ok(out)
    }

    refuse! {
        serialize_bool(bool) -> S::Ok;
        serialize_i8(i8) -> S::Ok;
        serialize_i16(i16) -> S::Ok;
        serialize_i32(i32) -> S::Ok;
        serialize_i64(i64) -> S::Ok;
        serialize_u8(u8) -> S::Ok;
        serialize_u16(u16) -> S::Ok;
        serialize_u32(u32) -> S::Ok;
        serialize_u64(u64) -> S::Ok;
        serialize_f32(f32) -> S::Ok;
        serialize_f64(f64) -> S::Ok;
        serialize_char(char) -> S::Ok;
        serialize_str(&str) -> S::Ok;
        serialize_bytes(&[u8]) -> S::Ok;
        serialize_none() -> S::Ok;
        serialize_unit() -> S::Ok;
        serialize_unit_struct(&'static str) -> S::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> S::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(remote = "Self")]
    struct Probe {
        a: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<u8>,
        c: u8,
    }
    super::literal_type!(Probe, "probe", after = Some("b"));

    #[test]
    fn the_tag_follows_its_field_even_when_that_field_is_skipped() {
        assert_eq!(Probe::TYPE, "probe");
        let written = Probe {
            a: 1,
            b: Some(2),
            c: 3,
        };
        assert_eq!(
            serde_json::to_string(&written).unwrap(),
            r#"{"a":1,"b":2,"type":"probe","c":3}"#
        );
        let skipped = Probe {
            a: 1,
            b: None,
            c: 3,
        };
        assert_eq!(
            serde_json::to_string(&skipped).unwrap(),
            r#"{"a":1,"type":"probe","c":3}"#
        );
        let back: Probe = serde_json::from_str(r#"{"type":"probe","c":3,"a":1}"#).unwrap();
        assert_eq!((back.a, back.b, back.c), (1, None, 3));
    }
}

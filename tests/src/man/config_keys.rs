//! Every key the config parser accepts, found by walking its serde structs: a deserializer that
//! records the field list each `deserialize_struct` call hands it, and what each field's value
//! asks for (an integer, a string, a table...), then stops. A key added to
//! [`vtep::config::Config`] or any table under it shows up here without an edit, which is what
//! lets the `man` tests fail when vtep.toml(5) does not document it.
//!
//! One walk follows one path of keys (`vni`, then `workload`, ...) and fails on purpose where
//! the path ends: a deserializer that made up values to go on would have to satisfy every
//! `FromStr` of the config (addresses, MACs, prefixes). [`keys`] walks every path, one after the
//! other.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
};

use serde::{
    Deserialize as _,
    de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor, value::Error},
};

/// What a key's value is, in TOML's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    Integer,
    Float,
    String,
    /// An array of values that are not tables (`remotes`, `srcport`).
    Array,
    /// A table (`[underlay]`).
    Table,
    /// An array of tables (`[[vni]]`).
    ArrayOfTables,
    /// Whatever the value holds decides (`underlay.accept`: a string or an array).
    Any,
}

impl Kind {
    /// The word vtep.toml(5) uses for it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::String => "string",
            Self::Array => "array",
            Self::Table => "table",
            Self::ArrayOfTables => "array of tables",
            Self::Any => "any",
        }
    }
}

/// Every key of the config file by its dotted path (`underlay.interface`, `vni.workload.netns`;
/// tables are keys too: `vni`, `vni.workload`), with what its value is.
pub fn keys() -> BTreeMap<String, Kind> {
    let walk = Walk::default();
    let mut todo: Vec<Path> = vec![Vec::new()];
    let mut queued = BTreeSet::new();
    while let Some(path) = todo.pop() {
        // Fails where the path ends, by design; what it found is in `walk`.
        let _ = vtep::config::Config::deserialize(Tracer {
            walk: &walk,
            at: Vec::new(),
            rest: &path,
            element: false,
        });
        for (table, fields) in walk.tables.borrow().iter() {
            if queued.insert(table.clone()) {
                for field in *fields {
                    let mut next = table.clone();
                    next.push(field);
                    todo.push(next);
                }
            }
        }
    }
    walk.kinds
        .into_inner()
        .into_iter()
        .map(|(path, kind)| (path.join("."), kind))
        .collect()
}

/// Keys from the root table down, as serde names them.
type Path = Vec<&'static str>;

/// What the walks found.
#[derive(Default)]
struct Walk {
    /// Path → kind, for every key reached.
    kinds: RefCell<BTreeMap<Path, Kind>>,
    /// Path of a table or array of tables → its fields (the root table's path is empty).
    tables: RefCell<BTreeMap<Path, &'static [&'static str]>>,
}

/// A deserializer standing at key `at`, which goes on down `rest`. `element`: it stands for one
/// element of the array `at` is, so a table here makes `at` an array of tables.
struct Tracer<'w, 'p> {
    walk: &'w Walk,
    at: Path,
    rest: &'p [&'static str],
    element: bool,
}

impl Tracer<'_, '_> {
    /// Records that the value at `at` is a `kind` leaf, and ends the walk there.
    fn leaf<T>(self, kind: Kind) -> Result<T, Error> {
        let kind = if self.element { Kind::Array } else { kind };
        if !self.at.is_empty() {
            self.walk.kinds.borrow_mut().insert(self.at, kind);
        }
        Err(de::Error::custom("the walk ends at a value"))
    }
}

/// Every leaf method records its kind and ends the walk.
macro_rules! leaves {
    ($($method:ident => $kind:expr),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            self.leaf($kind)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Tracer<'_, '_> {
    type Error = Error;

    leaves! {
        deserialize_any => Kind::Any,
        deserialize_bool => Kind::Boolean,
        deserialize_i8 => Kind::Integer,
        deserialize_i16 => Kind::Integer,
        deserialize_i32 => Kind::Integer,
        deserialize_i64 => Kind::Integer,
        deserialize_i128 => Kind::Integer,
        deserialize_u8 => Kind::Integer,
        deserialize_u16 => Kind::Integer,
        deserialize_u32 => Kind::Integer,
        deserialize_u64 => Kind::Integer,
        deserialize_u128 => Kind::Integer,
        deserialize_f32 => Kind::Float,
        deserialize_f64 => Kind::Float,
        deserialize_char => Kind::String,
        deserialize_str => Kind::String,
        deserialize_string => Kind::String,
        deserialize_bytes => Kind::Array,
        deserialize_byte_buf => Kind::Array,
        deserialize_unit => Kind::Any,
        deserialize_map => Kind::Table,
        deserialize_identifier => Kind::String,
        deserialize_ignored_any => Kind::Any,
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, Error> {
        self.leaf(Kind::Any)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Error> {
        self.leaf(Kind::Array)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, Error> {
        self.leaf(Kind::Array)
    }

    /// A TOML enum of unit variants is a string (`xdp = "auto"`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        self.leaf(Kind::String)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// An array: its one element is walked in its place.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.element {
            // An array of arrays: nothing in the config has one, and a table cannot be below.
            return self.leaf(Kind::Array);
        }
        visitor.visit_seq(OneElement(Some(Tracer {
            element: true,
            ..self
        })))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let kind = if self.element {
            Kind::ArrayOfTables
        } else {
            Kind::Table
        };
        if !self.at.is_empty() {
            self.walk.kinds.borrow_mut().insert(self.at.clone(), kind);
        }
        self.walk
            .tables
            .borrow_mut()
            .insert(self.at.clone(), fields);
        let Some((&key, rest)) = self.rest.split_first() else {
            return Err(de::Error::custom("the walk ends at a table"));
        };
        let mut at = self.at;
        at.push(key);
        visitor.visit_map(OneKey {
            key: Some(key),
            value: Some(Tracer {
                walk: self.walk,
                at,
                rest,
                element: false,
            }),
        })
    }
}

/// A table holding just the next key of the path.
struct OneKey<'w, 'p> {
    key: Option<&'static str>,
    value: Option<Tracer<'w, 'p>>,
}

impl<'de> MapAccess<'de> for OneKey<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.key
            .take()
            .map(|k| seed.deserialize(de::value::BorrowedStrDeserializer::new(k)))
            .transpose()
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let value = self.value.take().expect("a value follows its key");
        seed.deserialize(value)
    }
}

/// An array of one element.
struct OneElement<'w, 'p>(Option<Tracer<'w, 'p>>);

impl<'de> SeqAccess<'de> for OneElement<'_, '_> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        self.0.take().map(|t| seed.deserialize(t)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk reaches the deepest tables and tells tables, arrays of tables, arrays and
    /// options' contents apart.
    #[test]
    fn the_walk_finds_nested_keys_with_their_kinds() {
        let keys = keys();
        let kind = |k: &str| keys.get(k).copied();
        assert_eq!(kind("name"), Some(Kind::String));
        assert_eq!(kind("fdb_size"), Some(Kind::Integer));
        assert_eq!(kind("underlay"), Some(Kind::Table));
        assert_eq!(kind("underlay.srcport"), Some(Kind::Array));
        assert_eq!(kind("underlay.xdp"), Some(Kind::String));
        assert_eq!(kind("underlay.local"), Some(Kind::String));
        assert_eq!(kind("underlay.accept"), Some(Kind::Any));
        assert_eq!(kind("vni"), Some(Kind::ArrayOfTables));
        assert_eq!(kind("vni.remotes"), Some(Kind::Array));
        assert_eq!(kind("vni.learning"), Some(Kind::Boolean));
        assert_eq!(kind("vni.host"), Some(Kind::Table));
        assert_eq!(kind("vni.host.mac"), Some(Kind::String));
        assert_eq!(kind("vni.workload"), Some(Kind::ArrayOfTables));
        assert_eq!(kind("vni.workload.netns"), Some(Kind::String));
        assert_eq!(kind("vni.neigh.ip"), Some(Kind::String));
        assert_eq!(kind("route.via"), Some(Kind::String));
        assert_eq!(kind("store.lease_ttl"), Some(Kind::Integer));
        assert_eq!(kind("metrics.listen"), Some(Kind::String));
        assert_eq!(kind("vni.proxy_entries"), None, "serde's names, not Rust's");
    }
}

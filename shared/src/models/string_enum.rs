//! String enums that survive values ChargebackStop adds later.
//!
//! Every enum in the API (statuses, types, codes) is declared with `string_enum!`: the known
//! values become variants and anything else is kept verbatim in `Other(String)`, so a new status
//! on one field never makes the whole alert or enrolment unreadable. Serialising an `Other`
//! writes the original string back, so a round trip is lossless.

/// Declares a string enum with an `Other(String)` fallback, `as_str`, `Display`, `FromStr`,
/// `From<&str>`, and serde implementations that go through the wire string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept exactly as received.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, as written on the wire.
            pub const KNOWN: &'static [&'static str] = &[$($wire),+];

            /// The value as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(value) => value.as_str(),
                }
            }

            /// False for a value kept in `Other`.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }

            /// Maps a wire string to a variant; unknown strings become `Other`.
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from_wire(value))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::from_wire(value)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match Self::from_wire(&value) {
                    Self::Other(_) => Self::Other(value),
                    known => known,
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(value))
            }
        }
    };
}

pub(crate) use string_enum;

/// Serde helpers shared by the models.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer};

    /// Reads `null` (or a missing field, with `#[serde(default)]`) as the type's default, e.g. an
    /// empty list: the API writes `"arns": null` where it has nothing.
    pub fn default_if_null<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Default + Deserialize<'de>,
    {
        Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    string_enum! {
        pub enum Colour {
            Red = "RED",
            DarkBlue = "DARK_BLUE",
        }
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Holder {
        colour: Colour,
        n: u32,
    }

    #[test]
    fn known_values_map_to_variants_and_back() {
        let parsed: Colour = serde_json::from_str(r#""DARK_BLUE""#).unwrap();
        assert_eq!(parsed, Colour::DarkBlue);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r#""DARK_BLUE""#);
        assert_eq!(Colour::Red.to_string(), "RED");
        assert!(Colour::Red.is_known());
        assert_eq!(Colour::KNOWN, &["RED", "DARK_BLUE"]);
    }

    #[test]
    fn unknown_values_are_kept_and_do_not_break_the_object() {
        let holder: Holder = serde_json::from_str(r#"{"colour":"ULTRAVIOLET","n":7}"#).unwrap();
        assert_eq!(holder.colour, Colour::Other("ULTRAVIOLET".into()));
        assert!(!holder.colour.is_known());
        assert_eq!(holder.n, 7);
        let back = serde_json::to_string(&holder).unwrap();
        assert_eq!(back, r#"{"colour":"ULTRAVIOLET","n":7}"#);
    }

    #[test]
    fn matching_is_case_sensitive_like_the_api() {
        assert_eq!(Colour::from("red"), Colour::Other("red".into()));
        assert_eq!(Colour::from(String::from("RED")), Colour::Red);
        assert_eq!("DARK_BLUE".parse::<Colour>().unwrap(), Colour::DarkBlue);
    }

    #[test]
    fn non_strings_are_still_an_error() {
        assert!(serde_json::from_str::<Colour>("3").is_err());
    }
}

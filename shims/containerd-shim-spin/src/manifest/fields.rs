//! A reader of TOML tables that knows where it is, so that errors name the field; and
//! Spin's rules for ids.

use std::path::Path;

use toml::{Table, Value};

use super::ManifestError;

/// The kinds of ids Spin's `spin-serde` checks: words of ASCII letters and digits, each
/// starting with a letter and all lower or all upper case, joined by a delimiter.
#[derive(Clone, Copy)]
pub(super) struct IdKind {
    what: &'static str,
    delim: char,
    lower_case: bool,
}

/// Component ids (`KebabId`).
pub(super) const COMPONENT_ID: IdKind = IdKind {
    what: "component id",
    delim: '-',
    lower_case: false,
};
/// Application and component variable names (`LowerSnakeId`).
pub(super) const VARIABLE_NAME: IdKind = IdKind {
    what: "variable name",
    delim: '_',
    lower_case: true,
};
/// The snake_case half of store and database labels (`SnakeId`).
pub(super) const SNAKE_LABEL: IdKind = IdKind {
    what: "label",
    delim: '_',
    lower_case: false,
};

/// Why `id` is not an id of this kind, or `None` if it is one.
pub(super) fn id_error(id: &str, kind: IdKind) -> Option<String> {
    let delim = kind.delim;
    if id.is_empty() {
        return Some("it is empty".to_owned());
    }
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Some(format!("words are joined with {delim:?}, not {wrong:?}"));
    }
    for word in id.split(delim) {
        let Some(first) = word.chars().next() else {
            return Some(format!("it has an empty word between {delim:?}s"));
        };
        if !first.is_ascii_alphabetic() {
            return Some(format!(
                "each word starts with an ASCII letter, not {first:?}"
            ));
        }
        if let Some(c) = word.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Some(format!(
                "words have only ASCII letters and digits, not {c:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        if word
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c.is_ascii_uppercase() != upper)
        {
            return Some(format!("the word {word:?} mixes lower and upper case"));
        }
        if kind.lower_case && upper {
            return Some("it must be lower case".to_owned());
        }
    }
    None
}

/// A TOML table being read, with where it is, so errors can say so.
pub(super) struct Fields<'a> {
    pub(super) file: &'a Path,
    /// The table's path from the document root, empty for the root.
    pub(super) path: String,
    pub(super) table: &'a Table,
}

impl<'a> Fields<'a> {
    pub(super) fn path_of(&self, key: &str) -> String {
        key_path(&self.path, key)
    }

    pub(super) fn error(&self, message: impl Into<String>) -> ManifestError {
        let field = (!self.path.is_empty()).then(|| self.path.clone());
        ManifestError::new(self.file, field, message)
    }

    pub(super) fn error_at(&self, key: &str, message: impl Into<String>) -> ManifestError {
        ManifestError::new(self.file, Some(self.path_of(key)), message)
    }

    /// Fails if `id`, found at `key`, is not an id of this kind.
    pub(super) fn check_id(&self, key: &str, id: &str, kind: IdKind) -> Result<(), ManifestError> {
        match id_error(id, kind) {
            None => Ok(()),
            Some(reason) => Err(self.error_at(
                key,
                format!("{id:?} is not a valid {}: {reason}", kind.what),
            )),
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) -> ManifestError {
        self.error_at(
            key,
            format!("expected {expected}, found {}", type_name(found)),
        )
    }

    /// Fails on the first key not in `known`.
    pub(super) fn deny_unknown(&self, known: &[&str]) -> Result<(), ManifestError> {
        match self.table.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => Err(self.error_at(
                key,
                format!("unknown field; expected one of: {}", known.join(", ")),
            )),
        }
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ManifestError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    pub(super) fn required_string(&self, key: &str) -> Result<String, ManifestError> {
        self.string(key)?
            .ok_or_else(|| self.error_at(key, "missing"))
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ManifestError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    pub(super) fn array(&self, key: &str) -> Result<&'a [Value], ManifestError> {
        match self.table.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// A list of strings; empty when missing.
    pub(super) fn strings(&self, key: &str) -> Result<Vec<String>, ManifestError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(ManifestError::new(
                    self.file,
                    Some(format!("{}[{i}]", self.path_of(key))),
                    format!("expected a string, found {}", type_name(other)),
                )),
            })
            .collect()
    }

    pub(super) fn table(&self, key: &str) -> Result<Option<Fields<'a>>, ManifestError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Table(table)) => Ok(Some(Fields {
                file: self.file,
                path: self.path_of(key),
                table,
            })),
            Some(other) => Err(self.wrong_type(key, "a table", other)),
        }
    }

    pub(super) fn required_table(&self, key: &str) -> Result<Fields<'a>, ManifestError> {
        self.table(key)?
            .ok_or_else(|| self.error_at(key, "missing"))
    }
}

/// `parent.key`, with the key quoted when it is not a bare TOML key.
pub(super) fn key_path(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

//! Reading Kubernetes objects from what `kubectl get ... -o json` or `-o yaml` writes: a `v1 List`
//! of mixed kinds, a typed list (`PodList`), a single object, a JSON array, or YAML with several
//! documents. Objects are typed with `k8s-openapi`, the crate `kube` uses, so a live client can
//! later feed the same [`Sources`].
//!
//! YAML is read with `serde_norway`. `serde_yaml` is deprecated and unmaintained; `serde_yml`
//! has a RustSec advisory and is now a deprecated shim; `serde-saphyr` needed Rust 1.89 when
//! this was chosen (kube now brings it in). `serde_norway` is the maintained fork of `serde_yaml` (same API, same
//! libyaml-derived parser that has read Kubernetes YAML for years) and reports line and column.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One Kubernetes object the inventory understands.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(Box<Pod>),
    Service(Box<Service>),
    EndpointSlice(Box<EndpointSlice>),
    Node(Box<Node>),
    Namespace(Box<Namespace>),
    ReplicaSet(Box<ReplicaSet>),
    Job(Box<Job>),
}

macro_rules! object_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Object {
            fn from(o: $t) -> Self {
                Object::$t(Box::new(o))
            }
        }
    )*};
}
object_from!(Pod, Service, EndpointSlice, Node, Namespace, ReplicaSet, Job);

/// Why an inventory file could not be used. Each message starts with the file's name.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{name}: cannot read: {source}")]
    Io { name: String, source: std::io::Error },
    #[error("{name}: not valid JSON: {message} (line {line}, column {column})")]
    Json { name: String, message: String, line: usize, column: usize },
    #[error("{name}: not valid YAML: {message}")]
    Yaml { name: String, message: String },
    /// A known kind whose fields do not fit its schema, e.g. a port that is not a number.
    #[error("{name}: {path}: {message}")]
    Object { name: String, path: String, message: String },
    #[error("{name}: {message}")]
    Shape { name: String, message: String },
}

/// Everything loaded so far, from any number of files (or, later, from a live cluster).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub objects: Vec<Object>,
    /// Objects of kinds the inventory does not use, by kind (`ConfigMap`, `Service.serving.knative.dev`).
    pub skipped: BTreeMap<String, usize>,
    /// Per-file warnings, each starting with the file's name.
    pub warnings: Vec<String>,
}

/// What one file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    pub objects: usize,
    pub skipped: usize,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, object: impl Into<Object>) {
        self.objects.push(object.into());
    }

    /// Adds the objects in `bytes` (JSON or YAML), or none of them if the file is malformed.
    /// `name` is used in messages.
    pub fn load(&mut self, name: &str, bytes: &[u8]) -> Result<LoadSummary, LoadError> {
        let docs = documents(name, bytes)?;
        let mut parsed = Parsed { name, multi_doc: docs.len() > 1, ..Parsed::default() };
        for (i, doc) in docs.into_iter().enumerate() {
            let at = if parsed.multi_doc { format!("document {}", i + 1) } else { String::new() };
            parsed.walk(doc, &at, None)?;
        }
        let summary =
            LoadSummary { objects: parsed.objects.len(), skipped: parsed.skipped.values().sum() };
        if !parsed.skipped.is_empty() {
            let kinds: Vec<String> =
                parsed.skipped.iter().map(|(k, n)| format!("{k} ({n})")).collect();
            parsed.warnings.push(format!(
                "{name}: skipped {} objects of kinds the inventory does not use: {}",
                summary.skipped,
                kinds.join(", ")
            ));
        }
        self.objects.append(&mut parsed.objects);
        for (k, n) in parsed.skipped {
            *self.skipped.entry(k).or_default() += n;
        }
        self.warnings.append(&mut parsed.warnings);
        Ok(summary)
    }

    /// Reads and loads one file; `-` is not special here.
    pub fn load_file(&mut self, path: &Path) -> Result<LoadSummary, LoadError> {
        let name = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|source| LoadError::Io { name: name.clone(), source })?;
        self.load(&name, &bytes)
    }
}

/// The documents of a file as JSON values (a YAML stream may hold several).
fn documents(name: &str, bytes: &[u8]) -> Result<Vec<Value>, LoadError> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        return serde_json::from_slice(text).map(|v| vec![v]).map_err(|e| LoadError::Json {
            name: name.to_string(),
            message: json_message(&e),
            line: e.line(),
            column: e.column(),
        });
    }
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_slice(text) {
        let v = Value::deserialize(doc)
            .map_err(|e| LoadError::Yaml { name: name.to_string(), message: e.to_string() })?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    if docs.is_empty() {
        return Err(LoadError::Shape {
            name: name.to_string(),
            message: "no Kubernetes objects in the file (empty?)".into(),
        });
    }
    Ok(docs)
}

/// serde_json appends " at line L column C"; the error carries them apart.
fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[derive(Default)]
struct Parsed<'a> {
    name: &'a str,
    multi_doc: bool,
    objects: Vec<Object>,
    skipped: BTreeMap<String, usize>,
    warnings: Vec<String>,
}

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl Parsed<'_> {
    /// `inherited` is (apiVersion, kind) of the items of a typed list like `PodList`, whose
    /// items the API server sends without either field.
    fn walk(
        &mut self,
        v: Value,
        at: &str,
        inherited: Option<(&str, &str)>,
    ) -> Result<(), LoadError> {
        let mut v = match v {
            Value::Array(items) => return self.items(items, at, inherited),
            Value::Object(map) => map,
            other => {
                return Err(self
                    .shape(at, format!("expected an object or a list, found {}", kind_of(&other))))
            }
        };
        let str_field = |v: &serde_json::Map<String, Value>, k: &str| {
            v.get(k).and_then(Value::as_str).map(str::to_string)
        };
        let (api_version, kind) = match (str_field(&v, "apiVersion"), str_field(&v, "kind")) {
            (a, Some(k)) => (a.unwrap_or_default(), k),
            (None, None) if inherited.is_some() => {
                let (a, k) = inherited.unwrap_or_default();
                (a.to_string(), k.to_string())
            }
            _ => {
                let where_ = if at.is_empty() { "an object".to_string() } else { at.to_string() };
                self.warnings.push(format!("{}: {where_} has no kind; skipped", self.name));
                return Ok(());
            }
        };
        if let Some(item_kind) = kind.strip_suffix("List") {
            // An empty list may come as `items: null`.
            let items = match v.remove("items") {
                Some(Value::Array(items)) => items,
                Some(Value::Null) => Vec::new(),
                _ => return Err(self.shape(at, format!("{kind} without an items array"))),
            };
            let item = (!item_kind.is_empty()).then_some((api_version.as_str(), item_kind));
            return self.items(items, at, item);
        }
        let obj = Value::Object(v);
        let g = group(&api_version);
        let parsed = match (g, kind.as_str()) {
            ("", "Pod") => self.typed::<Pod>(obj, at, "v1"),
            ("", "Service") => self.typed::<Service>(obj, at, "v1"),
            ("", "Node") => self.typed::<Node>(obj, at, "v1"),
            ("", "Namespace") => self.typed::<Namespace>(obj, at, "v1"),
            // v1beta1 slices (Kubernetes < 1.25) share the fields used here.
            ("discovery.k8s.io", "EndpointSlice") => {
                self.typed::<EndpointSlice>(obj, at, "discovery.k8s.io/v1")
            }
            ("apps", "ReplicaSet") => self.typed::<ReplicaSet>(obj, at, "apps/v1"),
            ("batch", "Job") => self.typed::<Job>(obj, at, "batch/v1"),
            _ => {
                let key = if g.is_empty() { kind } else { format!("{kind}.{g}") };
                *self.skipped.entry(key).or_default() += 1;
                return Ok(());
            }
        }?;
        self.objects.push(parsed);
        Ok(())
    }

    fn items(
        &mut self,
        items: Vec<Value>,
        at: &str,
        inherited: Option<(&str, &str)>,
    ) -> Result<(), LoadError> {
        for (i, item) in items.into_iter().enumerate() {
            let here =
                if at.is_empty() { format!("items[{i}]") } else { format!("{at}: items[{i}]") };
            self.walk(item, &here, inherited)?;
        }
        Ok(())
    }

    /// Deserializes one object; an error names the object and the path of the bad field.
    fn typed<T>(&self, mut obj: Value, at: &str, api_version: &str) -> Result<Object, LoadError>
    where
        T: DeserializeOwned + Into<Object>,
    {
        let label = object_label(&obj);
        // k8s-openapi checks apiVersion and kind exactly; the group was checked by the caller.
        if let Value::Object(m) = &mut obj {
            m.insert("apiVersion".into(), Value::String(api_version.into()));
        }
        serde_path_to_error::deserialize::<_, T>(obj).map(Into::into).map_err(|e| {
            let field = e.path().to_string();
            let mut path = if at.is_empty() { label } else { format!("{at} ({label})") };
            if field != "." {
                path = format!("{path}: field {field}");
            }
            LoadError::Object {
                name: self.name.to_string(),
                path,
                message: e.into_inner().to_string(),
            }
        })
    }

    fn shape(&self, at: &str, message: String) -> LoadError {
        let message = if at.is_empty() { message } else { format!("{at}: {message}") };
        LoadError::Shape { name: self.name.to_string(), message }
    }
}

/// `Pod shop/web-0`, for messages.
fn object_label(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let meta = obj.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("?");
    match meta.and_then(|m| m.get("namespace")).and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<(Sources, LoadSummary), LoadError> {
        let mut s = Sources::new();
        let summary = s.load("inv.yaml", text.as_bytes())?;
        Ok((s, summary))
    }

    #[test]
    fn typed_list_items_without_kind_inherit_it() {
        let (s, sum) = load(
            r#"{"apiVersion":"v1","kind":"PodList","items":[
                {"metadata":{"name":"a","namespace":"n"},"spec":{"containers":[]}}]}"#,
        )
        .unwrap();
        assert_eq!(sum, LoadSummary { objects: 1, skipped: 0 });
        assert!(matches!(s.objects[0], Object::Pod(_)));
    }

    #[test]
    fn same_kind_in_another_group_is_skipped() {
        let (s, sum) =
            load("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\n")
                .unwrap();
        assert_eq!(sum.skipped, 1);
        assert_eq!(s.skipped.get("Service.serving.knative.dev"), Some(&1));
        assert!(s.warnings[0].starts_with("inv.yaml: skipped 1 objects"), "{:?}", s.warnings);
    }

    #[test]
    fn empty_lists_load_and_lists_need_items() {
        assert_eq!(load("apiVersion: v1\nkind: List\nitems: null\n").unwrap().1.objects, 0);
        assert_eq!(load("{\"kind\": \"PodList\", \"items\": []}").unwrap().1.objects, 0);
        let e = load("kind: List\n").unwrap_err().to_string();
        assert_eq!(e, "inv.yaml: List without an items array");
    }

    #[test]
    fn object_without_kind_is_a_warning() {
        let (s, sum) = load("metadata: {name: x}\n").unwrap();
        assert_eq!(sum.objects, 0);
        assert_eq!(s.warnings, ["inv.yaml: an object has no kind; skipped"]);
    }

    #[test]
    fn scalar_document_is_an_error() {
        let e = load("just text\n").unwrap_err().to_string();
        assert_eq!(e, "inv.yaml: expected an object or a list, found a string");
    }

    #[test]
    fn empty_file_is_an_error() {
        let e = load("\n---\n").unwrap_err().to_string();
        assert!(e.contains("no Kubernetes objects"), "{e}");
    }

    #[test]
    fn a_failed_file_adds_nothing() {
        let mut s = Sources::new();
        let bad = r#"{"kind":"List","apiVersion":"v1","items":[
            {"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}},
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":7}}]}"#;
        let e = s.load("bad.json", bad.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            e,
            "bad.json: items[1] (Pod p): field spec.containers: invalid type: integer `7`, expected a sequence"
        );
        assert!(s.objects.is_empty());
    }
}

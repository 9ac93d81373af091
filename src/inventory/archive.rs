//! The objects of [`Sources`] written back as the `v1 List` that `kubectl get ... -o json`
//! writes: what `mtlscope inventory` archives next to a capture. [`Sources::load`] (and kubectl)
//! read it back, and the same objects give the same [`Inventory`](super::Inventory), which the
//! resolved view (`Inventory::write_json`) could not promise: it drops what the resolution does
//! not show (uids, owner objects, container states).

use super::{Object, Sources};
use serde_json::{json, Value};
use std::io::{self, Write};

impl Object {
    /// The object as the API server writes it (with `apiVersion` and `kind`), without
    /// `metadata.managedFields`.
    pub fn to_value(&self) -> Value {
        let v = match self {
            Object::Pod(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::EndpointSlice(o) => serde_json::to_value(o),
            Object::Node(o) => serde_json::to_value(o),
            Object::Namespace(o) => serde_json::to_value(o),
            Object::ReplicaSet(o) => serde_json::to_value(o),
            Object::Job(o) => serde_json::to_value(o),
        };
        // k8s-openapi types serialize to maps with string keys: this cannot fail.
        let mut v = v.unwrap_or_default();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        v
    }
}

impl Sources {
    /// Every object, in load order (so later snapshots still win when read back), as a `v1 List`.
    pub fn to_list(&self) -> Value {
        let items: Vec<Value> = self.objects.iter().map(Object::to_value).collect();
        json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": { "resourceVersion": "" },
            "items": items,
        })
    }

    /// [`Sources::to_list`] as pretty JSON and a newline.
    pub fn write_list(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &self.to_list())?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;
    use super::*;
    use std::path::Path;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/inventory").join(name)
    }

    #[test]
    fn a_written_list_loads_back_to_the_same_inventory() {
        let mut original = Sources::new();
        for f in ["cluster.json", "extras.yaml", "pod.json"] {
            original.load_file(&data(f)).unwrap();
        }
        let mut out = Vec::new();
        original.write_list(&mut out).unwrap();
        let mut back = Sources::new();
        let summary = back.load("archive.json", &out).unwrap();
        assert_eq!(summary.objects, original.objects.len());
        assert_eq!(summary.skipped, 0);
        assert_eq!(Inventory::build(&back).to_json(), {
            // The skipped ConfigMap of extras.yaml is not archived; everything else is.
            let mut o = original.clone();
            o.skipped.clear();
            o.warnings.clear();
            Inventory::build(&o).to_json()
        });
    }

    #[test]
    fn items_carry_kind_and_no_managed_fields() {
        let mut s = Sources::new();
        s.load(
            "p.json",
            br#"{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"a",
                "namespace":"n","managedFields":[{"manager":"kubectl"}]},"spec":{"containers":[]}}]}"#,
        )
        .unwrap();
        let list = s.to_list();
        assert_eq!(list["kind"], "List");
        let item = &list["items"][0];
        assert_eq!((&item["apiVersion"], &item["kind"]), (&json!("v1"), &json!("Pod")));
        assert_eq!(item["metadata"]["name"], "a");
        assert!(item["metadata"].get("managedFields").is_none(), "{item}");
    }
}

//! The schema validators the check outputs are held to: the Jenkins/Surefire junit-10.xsd for
//! JUnit XML and the OASIS SARIF 2.1.0 JSON schema, both vendored in tests/data/check.

use regex::Regex;
use std::collections::HashMap;
use std::path::Path;

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check").join(name);
    std::fs::read_to_string(p).unwrap()
}

const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// The parts of an XSD that junit-10.xsd uses: global elements (by `type` or an inline
/// complexType), named complex and simple types (pattern restrictions), attributes with `use`
/// and `type`, `mixed`, and element refs inside sequence/choice.
struct Xsd<'a> {
    elements: HashMap<&'a str, roxmltree::Node<'a, 'a>>,
    complex: HashMap<&'a str, roxmltree::Node<'a, 'a>>,
    patterns: HashMap<&'a str, Regex>,
}

impl<'a> Xsd<'a> {
    fn new(doc: &'a roxmltree::Document<'a>) -> Self {
        let root = doc.root_element();
        let kids =
            || root.children().filter(|n| n.is_element() && n.tag_name().namespace() == Some(XS));
        let named = |kind: &str| -> HashMap<&'a str, roxmltree::Node<'a, 'a>> {
            kids()
                .filter(|n| n.tag_name().name() == kind)
                .map(|n| (n.attribute("name").unwrap(), n))
                .collect()
        };
        let patterns = named("simpleType")
            .into_iter()
            .map(|(name, n)| {
                let p = n.descendants().find(|d| d.tag_name().name() == "pattern").unwrap();
                (name, Regex::new(&format!("^(?:{})$", p.attribute("value").unwrap())).unwrap())
            })
            .collect();
        Xsd { elements: named("element"), complex: named("complexType"), patterns }
    }

    fn validate(&self, e: roxmltree::Node<'_, '_>, path: &str, errors: &mut Vec<String>) {
        let name = e.tag_name().name();
        let path = format!("{path}/{name}");
        let Some(decl) = self.elements.get(name) else {
            errors.push(format!("{path}: element not declared"));
            return;
        };
        let ty = match decl.attribute("type") {
            Some("xs:string") => {
                if e.children().any(|c| c.is_element()) || e.attributes().len() > 0 {
                    errors.push(format!("{path}: xs:string element with children or attributes"));
                }
                return;
            }
            Some(t) => *self.complex.get(t).expect("named complexType"),
            None => decl.children().find(|c| c.tag_name().name() == "complexType").unwrap(),
        };
        let attrs: Vec<roxmltree::Node<'_, '_>> =
            ty.children().filter(|c| c.tag_name().name() == "attribute").collect();
        for a in &attrs {
            let an = a.attribute("name").unwrap();
            match e.attribute(an) {
                None if a.attribute("use") == Some("required") => {
                    errors.push(format!("{path}: required attribute {an} missing"))
                }
                Some(v) => {
                    if let Some(re) = a.attribute("type").and_then(|t| self.patterns.get(t)) {
                        if !re.is_match(v) {
                            errors.push(format!("{path}@{an}: {v:?} does not match its pattern"));
                        }
                    }
                }
                None => {}
            }
        }
        for a in e.attributes() {
            if !attrs.iter().any(|d| d.attribute("name") == Some(a.name())) {
                errors.push(format!("{path}: undeclared attribute {}", a.name()));
            }
        }
        let allowed: Vec<&str> = ty
            .descendants()
            .filter(|d| d.tag_name().name() == "element")
            .filter_map(|d| d.attribute("ref"))
            .collect();
        let mixed = ty.attribute("mixed") == Some("true");
        for c in e.children() {
            if c.is_text() && !mixed && !c.text().unwrap_or("").trim().is_empty() {
                errors.push(format!("{path}: text in an element that is not mixed"));
            }
            if c.is_element() {
                if allowed.contains(&c.tag_name().name()) {
                    self.validate(c, &path, errors);
                } else {
                    errors.push(format!("{path}: child {} not allowed", c.tag_name().name()));
                }
            }
        }
    }
}

/// Every way `xml` breaks the vendored Jenkins junit-10.xsd (empty: valid).
pub fn junit_errors(xml: &str) -> Vec<String> {
    let xsd_text = data("junit-10.xsd");
    let xsd_doc = roxmltree::Document::parse(&xsd_text).unwrap();
    let xsd = Xsd::new(&xsd_doc);
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let mut errors = Vec::new();
    xsd.validate(doc.root_element(), "", &mut errors);
    errors
}

/// The OASIS SARIF 2.1.0 schema (vendored), compiled.
pub fn sarif_validator() -> jsonschema::Validator {
    let mut schema: serde_json::Value =
        serde_json::from_str(&data("sarif-schema-2.1.0.json")).unwrap();
    // The official schema's `language` patterns (of `run` and `toolComponent`) have a stray
    // `]` that a strict ECMA-262 regex check (the meta-schema's `format: regex`) refuses, so
    // the validator would not compile the schema. Our logs have no `language`; the patterns
    // are replaced by the one intended.
    let quirk = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    let mut fixed = 0;
    for def in ["run", "toolComponent"] {
        let p = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        if *p == quirk {
            *p = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into();
            fixed += 1;
        }
    }
    assert_eq!(fixed, 2, "the vendored schema changed");
    jsonschema::validator_for(&schema).expect("the SARIF schema compiles")
}

//! Templates that read only some keys of a record see the same values as with the whole
//! record (the conversion is narrowed to those keys); any other use gets the whole record.

use serde_json::{Value, json};
use sluice_interp::{Context, InterpolatedBoolean, Template};

fn record() -> Value {
    json!({"id": 5, "status": "active", "country": "de", "a.b": "dotted",
           "nested": {"x": [1, 2]}, "tags": ["t1", "t2"], "big": (0..500).collect::<Vec<_>>()})
}

fn render(source: &str) -> Value {
    let record = record();
    Template::new(source)
        .unwrap()
        .render(&Context::new().record(&record))
        .unwrap()
}

#[test]
fn constant_keys_read_the_same_values() {
    assert_eq!(
        render("{{ record['country'] }}-{{ record['id'] }}"),
        json!("de-5")
    );
    assert_eq!(render("{{ record.status }}"), json!("active"));
    assert_eq!(render("{{ record['nested']['x'][1] }}"), json!(2));
    assert_eq!(render("{{ record['a.b'] }}"), json!("dotted"));
    let record = record();
    let keep = InterpolatedBoolean::new("{{ record['status'] != 'deleted' }}").unwrap();
    assert!(keep.eval(&Context::new().record(&record)).unwrap());
}

#[test]
fn other_uses_see_the_whole_record() {
    assert_eq!(render("{{ record.get('country') }}"), json!("de"));
    assert_eq!(render("{{ record | length }}"), json!(7));
    assert_eq!(render("{{ record.keys() | list | length }}"), json!(7));
    assert_eq!(
        render("{% for k in record %}{{ k }},{% endfor %}"),
        json!("id,status,country,a.b,nested,tags,big,")
    );
    assert_eq!(render("{{ record['tags'] | join('|') }}"), json!("t1|t2"));
}

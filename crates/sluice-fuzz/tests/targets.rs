//! The fuzz targets as property tests on stable: every seed, byte-level mutations of the seeds,
//! and structured inputs (random JSON bodies and contexts, templates made of real template
//! syntax, datetime formats made of `%` directives, manifests with a node replaced). A panic in
//! a target fails the test with the input that caused it. The case counts keep the whole file
//! to a few seconds in a debug build.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};
use sluice_fuzz::{DECODER_KINDS, join};
use std::collections::HashMap;
use std::sync::LazyLock;

static SEEDS: LazyLock<HashMap<&'static str, Vec<Vec<u8>>>> = LazyLock::new(|| {
    let dir = sluice_fuzz::seeds::conformance_dir();
    sluice_fuzz::TARGETS
        .iter()
        .map(|t| (t.name, sluice_fuzz::seeds::seeds(t.name, &dir)))
        .collect()
});

fn seeds(target: &str) -> &'static [Vec<u8>] {
    &SEEDS[target]
}

fn run(target: &str, input: &[u8]) {
    (sluice_fuzz::target(target).expect("a known target").run)(input);
}

/// `cases` inputs from a fixed seed, so a run in CI fails only on a change that breaks a
/// target; `PROPTEST_RNG_SEED=<number>` explores other inputs.
fn config(cases: u32) -> Config {
    let default = Config::default();
    Config {
        cases,
        // Failures are reported with their input; nothing is written next to the sources.
        failure_persistence: None,
        rng_seed: match std::env::var_os("PROPTEST_RNG_SEED") {
            Some(_) => default.rng_seed,
            None => RngSeed::Fixed(0x51u64 << 32 | 0x1ce),
        },
        ..default
    }
}

#[test]
fn every_target_has_seeds_and_runs_them() {
    for target in sluice_fuzz::TARGETS {
        let seeds = seeds(target.name);
        assert!(!seeds.is_empty(), "no seeds for {}", target.name);
        // The two slowest targets read a case each: a sample of their seeds is enough here.
        let step = if matches!(target.name, "state" | "config") {
            4
        } else {
            1
        };
        for seed in seeds.iter().step_by(step) {
            (target.run)(seed);
        }
    }
}

// Byte-level mutations of the seeds.

/// One edit of an input: flip a bit, insert, delete a range, or copy a range elsewhere.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Copy(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        b"{".to_vec(),
        b"}".to_vec(),
        b"[".to_vec(),
        b"\"".to_vec(),
        b"{{".to_vec(),
        b"%".to_vec(),
        b"\n".to_vec(),
        b"\xff".to_vec(),
        b"-1".to_vec(),
        b"99999999999999999999".to_vec(),
        b"null".to_vec(),
        b"$ref".to_vec(),
        b"\\u0000".to_vec(),
        b"\xc3".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (
            any::<usize>(),
            prop_oneof![interesting, prop::collection::vec(any::<u8>(), 1..8)]
        )
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Delete(at, len)),
        (any::<usize>(), 1usize..64, any::<usize>())
            .prop_map(|(from, len, to)| Edit::Copy(from, len, to)),
    ]
}

fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = input.len();
        match edit {
            Edit::Flip(at, bit) if len > 0 => input[at % len] ^= 1 << bit,
            Edit::Insert(at, bytes) => {
                let at = at % (len + 1);
                input.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                input.drain(at..(at + n).min(len));
            }
            Edit::Copy(from, n, to) if len > 0 => {
                let from = from % len;
                let chunk = input[from..(from + n).min(len)].to_vec();
                let to = to % (len + 1);
                input.splice(to..to, chunk);
            }
            _ => {}
        }
    }
    input
}

fn mutated_seed(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds(target).len();
    (0..count, prop::collection::vec(edit(), 1..6))
        .prop_map(move |(i, edits)| apply(seeds(target)[i].clone(), &edits))
}

macro_rules! mutation_tests {
    ($($name:ident: $target:literal, $cases:expr;)*) => {
        $(
            proptest! {
                #![proptest_config(config($cases))]
                #[test]
                fn $name(input in mutated_seed($target)) {
                    run($target, &input);
                }
            }
        )*
    };
}

mutation_tests! {
    mutated_manifests: "manifest", 96;
    mutated_templates: "template", 256;
    mutated_literals: "literal", 512;
    mutated_datetimes: "datetime", 512;
    mutated_records: "records", 512;
    mutated_paginators: "paginator", 256;
    mutated_states: "state", 48;
    mutated_configs: "config", 48;
    mutated_cassettes: "cassette", 96;
}

// Structured inputs.

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9 _.:%{}'\"-]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "2024-01-01T00:00:00Z",
            "2024-02-29",
            "1700000000",
            "P1D",
            "PT1H",
            "",
            "None",
            "https://api.example.com/v1/items?page=2",
            "<https://x.test/?p=2>; rel=\"next\"",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "data",
            "items",
            "next",
            "cursor",
            "page",
            "name",
            "updated_at",
            "meta",
            "results",
            "total",
            "has_more",
            "link",
            "start_time",
            "end_time",
            "record",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_ .*]{0,6}",
    ]
}

/// Templates made of pieces of real template syntax, not all of them in a sensible order.
fn template_source() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{{ ",
        " }}",
        "{% ",
        " %}",
        "config",
        "record",
        "response",
        "stream_slice",
        "next_page_token",
        "parameters",
        "headers",
        "stream_state",
        "['id']",
        "['data']",
        ".get('next')",
        ".start_time",
        "[0]",
        "[-1]",
        " | ",
        "string",
        "int",
        "float",
        "length",
        "join(',')",
        "first",
        "default('x')",
        "tojson",
        "urlencode",
        "b64encode",
        "base64encode",
        "hash('md5')",
        "regex_replace('a', 'b')",
        "format_datetime(",
        "str_to_datetime(",
        "now_utc()",
        "today_utc()",
        "timestamp(",
        "max(",
        "min(",
        "day_delta(",
        "duration(",
        "(",
        ")",
        ", ",
        "'%Y-%m-%d'",
        "'%s'",
        "'P1D'",
        "'2024-01-01'",
        " if ",
        " else ",
        " and ",
        " or ",
        " not ",
        " is none",
        " is defined",
        " in ",
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "~",
        "==",
        "<",
        "1",
        "0",
        "-1",
        "1.5",
        "'a'",
        "\"b\"",
        "None",
        "True",
        "[1, 2]",
        "{'k': 'v'}",
        "for x in ",
        "endfor",
        "if ",
        "endif",
        "set y = ",
        "x",
        "y",
        ".items()",
        ".split(',')",
        ".strftime('%Y')",
        "loop.index",
        "range(3)",
        "camel_case_to_snake_case(",
        "sanitize_url(",
        "text ",
    ]);
    prop::collection::vec(piece, 0..14).prop_map(|pieces| pieces.concat())
}

fn context() -> impl Strategy<Value = Value> {
    (
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(config, record, response, slice, token)| {
            json!({
                "config": config,
                "record": record,
                "response": response,
                "stream_slice": slice,
                "next_page_token": {"next_page_token": token},
                "parameters": {"name": "items", "page_size": 10},
                "headers": {"link": {"next": {"url": "https://x.test/?p=2"}}},
            })
        })
}

/// Python literals: numbers in every base and spelling, strings with prefixes and escapes,
/// containers of them; some cut short.
fn literal_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!("0x{n:X}")),
        any::<u16>().prop_map(|n| format!("0o{n:o}")),
        any::<u8>().prop_map(|n| format!("0b{n:b}")),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "[0-9_]{1,8}(\\.[0-9_]{0,4})?(e[-+]?[0-9]{1,3})?j?",
        "[rbuRBU]{0,2}'([a-z \\\\]|\\\\x[0-9a-f]{2}|\\\\u[0-9a-f]{4}|\\\\N\\{[A-Z ]{1,8}\\})*'",
        "\"[^\"\\\\]{0,8}\"",
        prop::sample::select(vec!["True", "False", "None", "...", "-", "+", "not"])
            .prop_map(str::to_owned),
    ];
    let value = atom.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("({},)", v.join(", "))),
            prop::collection::vec(inner.clone(), 1..4)
                .prop_map(|v| format!("{{{}}}", v.join(", "))),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(|pairs| {
                let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", pairs.join(", "))
            }),
        ]
    });
    (value, any::<usize>(), any::<bool>()).prop_map(|(text, cut, truncate)| {
        if truncate && !text.is_empty() {
            let mut at = cut % text.len();
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_owned()
        } else {
            text
        }
    })
}

/// Datetime formats made of `%` directives (Python's and the reference's own), with text.
fn datetime_format() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "%Y",
        "%y",
        "%m",
        "%d",
        "%e",
        "%H",
        "%I",
        "%p",
        "%M",
        "%S",
        "%f",
        "%z",
        "%:z",
        "%Z",
        "%j",
        "%U",
        "%W",
        "%w",
        "%u",
        "%a",
        "%A",
        "%b",
        "%B",
        "%c",
        "%x",
        "%X",
        "%G",
        "%V",
        "%s",
        "%ms",
        "%s_as_float",
        "%epoch_microseconds",
        "%%",
        "%",
        "%q",
        "-",
        "/",
        ":",
        "T",
        " ",
        ".",
        "Z",
        "+00:00",
    ]);
    prop::collection::vec(piece, 1..8).prop_map(|pieces| pieces.concat())
}

fn datetime_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000).prop_map(|(s, micros)| {
            time::OffsetDateTime::from_unix_timestamp(s)
                .map(|dt| format!("{}", dt + time::Duration::microseconds(i64::from(micros))))
                .unwrap_or_default()
        }),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?",
        "P([0-9]{1,4}Y)?([0-9]{1,3}M)?([0-9]{1,3}W)?([0-9]{1,3}D)?(T([0-9]{1,3}H)?([0-9]{1,3}M)?([0-9.]{1,5}S)?)?",
        "[ -~]{0,20}",
    ]
}

fn csv_of(rows: &[Value]) -> Vec<u8> {
    let mut out = b"id,name,amount\n".to_vec();
    for row in rows {
        out.extend_from_slice(format!("{row},x,1.5\n").as_bytes());
    }
    out
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(json_value(), 0..6).prop_map(|values| {
            values
                .iter()
                .map(|v| format!("{v}\n"))
                .collect::<String>()
                .into_bytes()
        }),
        prop::collection::vec(json_value(), 0..6).prop_map(|values| csv_of(&values)),
        prop::collection::vec(key(), 0..6).prop_map(|keys| {
            let items: String = keys
                .iter()
                .map(|k| format!("<item k=\"{k}\">{k}</item>"))
                .collect();
            format!("<root>{items}</root>").into_bytes()
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn templates_over_random_contexts(source in template_source(), context in context()) {
        run("template", &join(&[source.as_bytes(), context.to_string().as_bytes()]));
    }

    #[test]
    fn python_literals(text in literal_text()) {
        run("literal", text.as_bytes());
    }

    #[test]
    fn datetime_formats_and_texts(format in datetime_format(), text in datetime_text()) {
        run("datetime", &join(&[format.as_bytes(), text.as_bytes()]));
    }

    #[test]
    fn random_bodies_through_every_decoder(
        kind in 0..DECODER_KINDS.len(),
        flags in any::<u8>(),
        path in prop::collection::vec(prop::sample::select(vec!["data", "items", "*", "0", "-1", "root", "item", "[ab]*"]), 0..3),
        body in body(),
        compress in 0u8..3,
    ) {
        // The gzip and zip decoders get the body compressed (and sometimes not).
        let body = match compress {
            1 => gzip(&body),
            2 => zip(&body),
            _ => body,
        };
        let kind = u8::try_from(kind).unwrap_or(0);
        run("records", &join(&[&[kind, flags], path.join("/").as_bytes(), &body]));
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn zip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("part.csv", zip::write::SimpleFileOptions::default())
        .expect("writing to memory");
    writer.write_all(bytes).expect("writing to memory");
    writer.finish().expect("writing to memory").into_inner()
}

fn paginator_json() -> impl Strategy<Value = Value> {
    let page_size = prop_oneof![
        (0i64..5).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!("{{ config.page_size }}")),
        Just(json!("{{ parameters.page_size }}")),
        Just(json!("ten")),
    ];
    let cursor_value = prop_oneof![
        template_source().prop_map(Value::from),
        Just(json!("{{ response.next }}")),
        Just(json!("{{ headers.link.next.url }}")),
        Just(json!("{{ last_record.id }}")),
    ];
    let strategy = prop_oneof![
        (page_size.clone(), any::<bool>()).prop_map(|(size, inject)| json!({
            "type": "OffsetIncrement", "page_size": size, "inject_on_first_request": inject
        })),
        (page_size.clone(), prop_oneof![Just(json!(0)), Just(json!(1)), any::<i64>().prop_map(Value::from)])
            .prop_map(|(size, start)| json!({
                "type": "PageIncrement", "page_size": size, "start_from_page": start
            })),
        (cursor_value, template_source(), page_size).prop_map(|(cursor, stop, size)| json!({
            "type": "CursorPagination", "cursor_value": cursor, "stop_condition": stop, "page_size": size
        })),
    ];
    let option = prop::sample::select(vec![
        "request_parameter",
        "header",
        "body_json",
        "body_data",
    ]);
    (strategy, option.clone(), option, any::<bool>()).prop_map(|(strategy, token_into, size_into, by_path)| {
        let token = if by_path {
            json!({"type": "RequestPath"})
        } else {
            json!({"type": "RequestOption", "inject_into": token_into, "field_name": "page"})
        };
        json!({
            "type": "DefaultPaginator",
            "pagination_strategy": strategy,
            "page_token_option": token,
            "page_size_option": {"type": "RequestOption", "inject_into": size_into, "field_name": "limit"},
        })
    })
}

fn headers() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("Link: <https://api.test/items?page=2>; rel=\"next\"".to_owned()),
            Just(
                "Link: <https://api.test/a>; rel=next, <https://api.test/b>; rel=\"last\"; title=x"
                    .to_owned()
            ),
            "Link: [ -~]{0,24}",
            "X-Next-Cursor: [a-z0-9]{0,8}",
            "[A-Za-z-]{1,8}: [ -~]{0,12}",
        ],
        0..4,
    )
    .prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn paginators_over_random_responses(
        count in any::<u8>(),
        paginator in paginator_json(),
        headers in headers(),
        response in json_value(),
    ) {
        let mut first = vec![count];
        first.extend_from_slice(paginator.to_string().as_bytes());
        run("paginator", &join(&[&first, headers.as_bytes(), response.to_string().as_bytes()]));
    }
}

/// A case's manifest with one node replaced by a random value, or one key removed, written back
/// as YAML.
fn mutated_manifest() -> impl Strategy<Value = String> {
    let trees: Vec<Value> = seeds("manifest")
        .iter()
        .filter_map(|yaml| sluice_manifest::yaml::parse(std::str::from_utf8(yaml).ok()?).ok())
        .collect();
    let count = trees.len();
    (0..count, any::<usize>(), json_value(), any::<bool>()).prop_map(
        move |(i, at, value, remove)| {
            let mut tree = trees[i].clone();
            let mut nodes = 0;
            count_nodes(&tree, &mut nodes);
            let mut target = at % nodes.max(1);
            replace_node(&mut tree, &mut target, &value, remove);
            serde_norway::to_string(&tree).unwrap_or_default()
        },
    )
}

fn count_nodes(value: &Value, count: &mut usize) {
    *count += 1;
    match value {
        Value::Array(items) => items.iter().for_each(|v| count_nodes(v, count)),
        Value::Object(map) => map.values().for_each(|v| count_nodes(v, count)),
        _ => {}
    }
}

/// Replaces the `target`-th node (depth first) with `value`, or removes it from its object.
fn replace_node(node: &mut Value, target: &mut usize, value: &Value, remove: bool) -> bool {
    if *target == 0 {
        *node = value.clone();
        return true;
    }
    *target -= 1;
    match node {
        Value::Array(items) => items
            .iter_mut()
            .any(|v| replace_node(v, target, value, remove)),
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if *target == 0 && remove {
                    map.remove(&key);
                    return true;
                }
                if let Some(child) = map.get_mut(&key) {
                    if replace_node(child, target, value, remove) {
                        return true;
                    }
                }
            }
            false
        }
        _ => false,
    }
}

fn config_case() -> impl Strategy<Value = (String, Map<String, Value>)> {
    let configs: Vec<(String, Map<String, Value>)> = seeds("config")
        .iter()
        .filter_map(|seed| {
            let (name, config) = std::str::from_utf8(seed).ok()?.split_once('\n')?;
            Some((name.to_owned(), serde_json::from_str(config).ok()?))
        })
        .collect();
    prop::sample::select(configs)
}

fn state_message() -> impl Strategy<Value = Value> {
    let stream_state = prop_oneof![
        json_value(),
        (key(), datetime_text()).prop_map(|(k, v)| json!({k: v, "updated_at": v})),
        datetime_text().prop_map(|v| json!({
            "states": [{"partition": {"id": 1, "parent_slice": {}}, "cursor": {"updated_at": v}}],
            "state": {"updated_at": v},
            "use_global_cursor": false,
            "lookback_window": 1,
        })),
    ];
    let name = prop::sample::select(vec!["items", "users", "events", "orders", "posts", "x"]);
    (name, stream_state, any::<bool>()).prop_map(|(name, state, global)| {
        if global {
            json!({"type": "GLOBAL", "global": {
                "shared_state": state,
                "stream_states": [{"stream_descriptor": {"name": name}, "stream_state": state}]
            }})
        } else {
            json!({"type": "STREAM", "stream": {
                "stream_descriptor": {"name": name}, "stream_state": state
            }})
        }
    })
}

fn cassette_json() -> impl Strategy<Value = Value> {
    let body = prop_oneof![
        json_value().prop_map(|v| json!({"json": v})),
        "[ -~]{0,16}".prop_map(|t| json!({"text": t})),
        "[A-Za-z0-9+/=]{0,12}".prop_map(|b| json!({"base64": b})),
    ];
    let exchange = (
        prop::sample::select(vec!["GET", "POST", "get", "PATCH", "BREW"]),
        prop_oneof![
            "https://api\\.example\\.com/v1/[a-z]{0,6}(\\?[a-z]=[a-z0-9%+ ]{0,4}(&[a-z]=[0-9]{0,2})?)?",
            "[ -~]{0,20}",
        ],
        prop::option::of(body.clone()),
        any::<u16>(),
        prop::option::of(body),
        prop::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,10}"), 0..3),
    )
        .prop_map(|(method, url, request_body, status, response_body, headers)| {
            let headers: Map<String, Value> =
                headers.into_iter().map(|(n, v)| (n, Value::String(v))).collect();
            let mut request = json!({"method": method, "url": url, "headers": headers, "match_headers": headers});
            if let Some(body) = request_body {
                request["body"] = body;
            }
            let mut response = json!({"status": status, "headers": headers});
            if let Some(body) = response_body {
                response["body"] = body;
            }
            json!({"request": request, "response": response})
        });
    prop::collection::vec(exchange, 0..6).prop_map(
        |exchanges| json!({"sluice_cassette": 1, "comment": "generated", "exchanges": exchanges}),
    )
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn manifests_with_a_node_replaced(yaml in mutated_manifest()) {
        run("manifest", yaml.as_bytes());
    }

    #[test]
    fn configs_with_a_value_replaced(
        (name, mut config) in config_case(),
        at in any::<usize>(),
        value in json_value(),
    ) {
        if !config.is_empty() {
            let key = config.keys().nth(at % config.len()).cloned().unwrap_or_default();
            config.insert(key, value);
        }
        run("config", format!("{name}\n{}", Value::Object(config)).as_bytes());
    }

    #[test]
    fn random_states(case in 0usize..64, messages in prop::collection::vec(state_message(), 0..3)) {
        let names: Vec<String> = seeds("state")
            .iter()
            .filter_map(|s| Some(std::str::from_utf8(s).ok()?.split_once('\n')?.0.to_owned()))
            .collect();
        let name = &names[case % names.len()];
        run("state", format!("{name}\n{}", Value::Array(messages)).as_bytes());
    }

    #[test]
    fn random_cassettes(cassette in cassette_json()) {
        run("cassette", cassette.to_string().as_bytes());
    }
}

/// Inputs that crashed a target once, each fixed in the crate concerned (where a unit test
/// pins the fix too).
#[test]
fn inputs_found_by_fuzzing() {
    // sluice-interp strftime: a field width beyond memory (`capacity overflow`).
    run(
        "datetime",
        &join(&[b"%99999999999999999999Y-%", b"2024-01-01"]),
    );
    // sluice-slice cursor: a concurrent-shaped state with an interval in the year 6827 made
    // millions of windows (out of memory).
    let state = r#"cursor-datetime-concurrent-state-format
[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {
  "state_type": "date-range",
  "slices": [
    {"start": "6827-03-01T00:00:00Z", "end": "2024-03-01T23:59:59Z", "most_recent_cursor_value": "2024-03-01T20:00:00Z"},
    {"start": "4048-03-03T00:00:00Z", "end": "2024-03-03T12:00:00Z", "most_recent_cursor_value": "2024-03-03T11:00:00Z"}
  ]}}}]"#;
    run("state", state.as_bytes());
}

//! Behaviour checked against the Python reference (airbyte-cdk 7.39.1): each expected value was
//! produced by `JinjaInterpolation`/`InterpolatedString`/`InterpolatedBoolean` in the reference.

use serde_json::{Value, json};
use sluice_interp::{
    Context, InterpError, InterpolatedBoolean, InterpolatedMapping, InterpolatedNestedMapping,
    LiteralType, Template,
};

fn config() -> Value {
    json!({"a": {"b": 1}, "n": null, "s": "x", "lst": ["a", "b"], "f": 1.0, "d": {"k": "v'q"},
           "id": "123", "zip": "007", "start_date": "2022-01-01T13:45:30Z"})
}

fn eval(source: &str) -> Result<Value, InterpError> {
    let config = config();
    Template::or_null(source)?.render(&Context::new().config(&config))
}

fn eval_ok(source: &str) -> Value {
    eval(source).unwrap_or_else(|e| panic!("{source}: {e}"))
}

#[test]
fn rendered_text_is_literal_evaluated() {
    let cases = [
        ("{{ config.n }}", json!(null)),
        ("x{{ config.n }}", json!("xNone")),
        ("{{ config.lst }}", json!(["a", "b"])),
        ("a{{ config.d }}", json!("a{'k': \"v'q\"}")),
        ("{{ config.f }}", json!(1.0)),
        ("{{ 1 > 0 }}", json!(true)),
        ("{{ config.id }}", json!(123)),
        ("{{ config.zip }}", json!("007")),
        ("{{ 4 / 2 }}", json!(2.0)),
        (
            "x{{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1e16 }}",
            json!("x1e+20 0.30000000000000004 1e+16"),
        ),
        ("{{ '12' | int + 1 }}", json!(13)),
        ("{{ '<a>' }}", json!("<a>")),
        ("{{ config.missing }}", json!(null)),
        ("{{ config.missing.x }}", json!(null)),
        ("1,2", json!([1, 2])),
        ("007", json!("007")),
        ("{{ True }}", json!(true)),
        ("{{ None }}", json!(null)),
        ("{{ config.get('s') }}", json!("x")),
        ("{{ config.get('nope', 'dflt') }}", json!("dflt")),
        ("{{ ','.join(config.lst) }}", json!("a,b")),
        ("{{ config.d.items() | list }}", json!([["k", "v'q"]])),
    ];
    for (source, expected) in cases {
        assert_eq!(eval_ok(source), expected, "{source}");
    }
}

#[test]
fn interpolated_string_defaults() {
    let config = config();
    let ctx = Context::new().config(&config);
    assert_eq!(
        Template::new("{{ config.missing }}")
            .unwrap()
            .render(&ctx)
            .unwrap(),
        json!("")
    );
    assert!(matches!(
        Template::new("{{ config.missing.x }}")
            .unwrap()
            .render(&ctx),
        Err(InterpError::Render { .. })
    ));
    let with_default = Template::with_default("{{ config.missing.x }}", "dflt").unwrap();
    assert_eq!(with_default.render(&ctx).unwrap(), json!("dflt"));
    let with_default = Template::with_default("{{ config.missing }}", "{{ 5 }}").unwrap();
    assert_eq!(with_default.render(&ctx).unwrap(), json!(5));
    // Constants are literal-evaluated too, and lose one trailing newline like Jinja output.
    assert_eq!(Template::new("5").unwrap().render(&ctx).unwrap(), json!(5));
    assert!(Template::new("5").unwrap().is_constant());
    assert_eq!(
        Template::new("abc\n").unwrap().render(&ctx).unwrap(),
        json!("abc")
    );
    assert_eq!(
        Template::new("abc{{ 1 }}\n").unwrap().render(&ctx).unwrap(),
        json!("abc1")
    );
}

#[test]
fn undeclared_variables_are_errors_but_known_ones_are_none() {
    match eval("{{ foo }}") {
        Err(InterpError::UndeclaredVariables { names, .. }) => assert_eq!(names, ["foo"]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(eval_ok("{{ next_page_token }}"), json!(null));
    let extra = json!("v");
    let t = Template::new("{{ foo }}").unwrap();
    assert_eq!(
        t.render(&Context::new().with("foo", &extra)).unwrap(),
        json!("v")
    );
}

#[test]
fn aliases() {
    let slice = json!({"start_time": "2020-01-01"});
    let params = json!({"name": "users"});
    let ctx = Context::new().stream_slice(&slice).parameters(&params);
    let t = Template::new("{{ stream_interval.start_time }}|{{ stream_partition['start_time'] }}|{{ options.name }}|{{ parameters.name }}").unwrap();
    assert_eq!(
        t.render(&ctx).unwrap(),
        json!("2020-01-01|2020-01-01|users|users")
    );
}

#[test]
fn valid_types() {
    let ctx = Context::new();
    let t = Template::new("5").unwrap();
    assert_eq!(
        t.render_as(&ctx, &[LiteralType::String]).unwrap(),
        json!("5")
    );
    assert_eq!(
        t.render_as(&ctx, &[LiteralType::Float]).unwrap(),
        json!("5")
    );
    assert_eq!(t.render_string(&ctx).unwrap(), "5");
    let t = Template::new("True").unwrap();
    assert_eq!(
        t.render_as(&ctx, &[LiteralType::Integer]).unwrap(),
        json!(true)
    );
    assert_eq!(
        Template::new("1+2j").unwrap().render(&ctx).unwrap(),
        json!("1+2j")
    );
}

#[test]
fn macros() {
    let cases = [
        ("{{ timestamp(1646006400) }}", json!(1646006400)),
        ("{{ timestamp('2022-02-28') }}", json!(1646006400.0)),
        (
            "{{ timestamp('2022-02-28T00:00:00Z') }}",
            json!(1646006400.0),
        ),
        (
            "{{ timestamp('2022-02-28 00:00:00Z') }}",
            json!(1646006400.0),
        ),
        (
            "{{ timestamp('2022-02-28T00:00:00-08:00') }}",
            json!(1646035200.0),
        ),
        (
            "{{ timestamp('2020-03-01T01:02:03.5+02:00') }}",
            json!(1583017323.5),
        ),
        ("{{ timestamp(1658505815.223235) }}", json!(1658505815)),
        ("{{ max(2, 3) }}", json!(3)),
        ("{{ max([2, 3]) }}", json!(3)),
        ("{{ min(2, 3) }}", json!(2)),
        ("{{ duration('P1D') }}", json!("1 day, 0:00:00")),
        ("{{ duration('P6DT23H') }}", json!("6 days, 23:00:00")),
        ("{{ duration('P1Y') }}", json!("1 years, 0:00:00")),
        (
            "{{ (str_to_datetime('2020-03-01') - duration('P1M')).isoformat() }}",
            json!("2020-02-01T00:00:00+00:00"),
        ),
        (
            "{{ str_to_datetime('2020-03-01') - duration('P1D') }}",
            json!("2020-02-29 00:00:00+00:00"),
        ),
        (
            "{{ str_to_datetime('2020-03-01') - str_to_datetime('2020-02-01') }}",
            json!("29 days, 0:00:00"),
        ),
        (
            "{{ str_to_datetime('2020-03-01T01:02:03.5+02:00') }}",
            json!("2020-02-29 23:02:03.500000+00:00"),
        ),
        (
            "{{ str_to_datetime('2022-01-14') }}",
            json!("2022-01-14 00:00:00+00:00"),
        ),
        (
            "{{ str_to_datetime('2022-01-01 13:45:30') }}",
            json!("2022-01-01 13:45:30+00:00"),
        ),
        (
            "{{ str_to_datetime('2022-01-01T13:45:30.123456Z') }}",
            json!("2022-01-01 13:45:30.123456+00:00"),
        ),
        (
            "{{ format_datetime('2020-03-01T01:02:03.5+02:00', '%s') }}",
            json!(1583017323),
        ),
        (
            "{{ format_datetime('2020-03-01T01:02:03.5+02:00', '%ms') }}",
            json!(1583017323500i64),
        ),
        (
            "{{ format_datetime('2020-03-01T01:02:03.5+02:00', '%Y-%m-%dT%H:%M:%S.%f%z') }}",
            json!("2020-02-29T23:02:03.500000+0000"),
        ),
        (
            "{{ format_datetime(1600000000, '%Y-%m-%d') }}",
            json!("2020-09-13"),
        ),
        (
            "{{ format_datetime('2020-03-01T01:02:03.5Z', '%epoch_microseconds') }}",
            json!(1583024523500000i64),
        ),
        (
            "{{ format_datetime('01/02/2020', '%Y-%m-%d', '%d/%m/%Y') }}",
            json!("2020-02-01"),
        ),
        (
            "{{ format_datetime(str_to_datetime('2020-01-01'), '%s') }}",
            json!(1577836800),
        ),
        (
            "{{ format_datetime(config['start_date'], '%Y-%m-%dT%H:%M:%S.%fZ') }}",
            json!("2022-01-01T13:45:30.000000Z"),
        ),
        (
            "{{ format_datetime('Sat, 01 Feb 2020 01:00:00 -0800', '%Y-%m-%dT%H:%M:%S%z', '%a, %d %b %Y %H:%M:%S %z') }}",
            json!("2020-02-01T01:00:00-0800"),
        ),
        (
            "{{ camel_case_to_snake_case('CamelCaseHTTP') }}",
            json!("camel_case_h_t_t_p"),
        ),
        (
            "{{ sanitize_url('https://example.com/path?query=value&a=b c') }}",
            json!("https%3A%2F%2Fexample.com%2Fpath%3Fquery%3Dvalue%26a%3Db+c"),
        ),
        (
            "{{ str_to_datetime('2020-03-01T01:02:03.5Z').isoformat() }}",
            json!("2020-03-01T01:02:03.500000+00:00"),
        ),
        (
            "{{ str_to_datetime('2020-03-01T01:02:03Z').isoformat('T', 'seconds') }}",
            json!("2020-03-01T01:02:03+00:00"),
        ),
        (
            "{{ str_to_datetime('2020-03-01T01:02:03Z').date() }}",
            json!("2020-03-01"),
        ),
        (
            "{{ str_to_datetime('2020-03-01T01:02:03Z').replace(day=5, hour=0) }}",
            json!("2020-03-05 00:02:03+00:00"),
        ),
        (
            "{{ str_to_datetime('2020-03-01T01:02:03Z').timestamp() }}",
            json!(1583024523.0),
        ),
        (
            "{{ str_to_datetime('2020-03-01') > str_to_datetime('2020-02-01') }}",
            json!(true),
        ),
        ("{{ 'a' + 'b' if now_utc() else 1 - 1 }}", json!("ab")),
    ];
    for (source, expected) in cases {
        assert_eq!(eval_ok(source), expected, "{source}");
    }
}

#[test]
fn current_time_macros_have_the_right_shape() {
    let now = eval_ok("{{ now_utc() }}");
    let now = now.as_str().unwrap();
    assert!(now.ends_with("+00:00") && now.len() >= 25, "{now}");
    let today = eval_ok("{{ today_utc() }}");
    assert_eq!(today.as_str().unwrap().len(), 10);
    assert_eq!(
        eval_ok("{{ today_utc().strftime('%Y/%m/%d') }}")
            .as_str()
            .unwrap()
            .len(),
        10
    );
    let delta = eval_ok("{{ day_delta(1) }}");
    assert!(delta.as_str().unwrap().ends_with("+0000"));
    let delta = eval_ok("{{ day_delta(25, format='%Y-%m-%d') }}");
    assert_eq!(delta.as_str().unwrap().len(), 10);
    let past = eval_ok("{{ (now_utc() - duration('P1D')).strftime('%Y-%m-%dT%H:%M:%SZ') }}");
    assert!(past.as_str().unwrap().ends_with('Z'));
    let uuid = eval_ok("{{ generate_uuid() }}");
    assert_eq!(uuid.as_str().unwrap().len(), 36);
    assert!(eval_ok("{{ now_utc() > str_to_datetime('2020-01-01') }}") == json!(true));
}

#[test]
fn filters() {
    let cases = [
        (
            "{{ 'Test client_secret' | hash() }}",
            json!("3032d57a12f76b61a820e47b9a5a0cbb"),
        ),
        (
            "{{ 'Test client_secret' | hash('md5') }}",
            json!("3032d57a12f76b61a820e47b9a5a0cbb"),
        ),
        (
            "{{ 'Test client_secret' | hash('md5', salt='salt') }}",
            json!("5011a0168579c2d94cbbe1c6ad14327c"),
        ),
        (
            "{{ 'abc' | hash('sha256', 'salt') }}",
            json!("169b3a2b0977ebee2eb1fd392c6aa470a3281d439ff32f20baea7309d7f40eec"),
        ),
        (
            "{{ 'abc' | hmac('key') }}",
            json!("9c196e32dc0175f86f4b1cb89289d6619de6bee699e4c378e68309ed97a1a6ab"),
        ),
        (
            "{{ 'Test client_secret' | base64encode }}",
            json!("VGVzdCBjbGllbnRfc2VjcmV0"),
        ),
        (
            "{{ 'ZmFrZSByZWZyZXNoX3Rva2VuIHZhbHVl' | base64decode }}",
            json!("fake refresh_token value"),
        ),
        ("{{ 'abc' | base64binascii_decode }}", json!("YWJj")),
        ("{{ 1 | string }}", json!("1")),
        ("{{ config.d | string }}", json!("{\"k\": \"v'q\"}")),
        ("{{ '2020-01-01' | string }}", json!("2020-01-01")),
        (
            "{{ [\"hello\", \"world\"] | string }}",
            json!("[\"hello\", \"world\"]"),
        ),
        (
            r#"{{ "goodbye, cruel world" | regex_search("goodbye,\s(.*)$") }}"#,
            json!("cruel world"),
        ),
        (
            "{{ 'a/b-1' | regex_search('/([a-z]-[0-9])') }}",
            json!("b-1"),
        ),
        ("{{ 'abc' | regex_search('x(y)') }}", json!(null)),
        (
            r#"{{ "hello world" | regex_replace("world", "universe") }}"#,
            json!("hello universe"),
        ),
        (
            r#"{{ "hello-world_foo" | regex_replace("[_-]", " ") }}"#,
            json!("hello world foo"),
        ),
        (
            "{{ 'a1b22' | regex_replace('[0-9]+', 'X') }}",
            json!("aXbX"),
        ),
    ];
    for (source, expected) in cases {
        assert_eq!(eval_ok(source), expected, "{source}");
    }
    assert!(matches!(
        eval("{{ 'a' | hmac('k', 'md5') }}"),
        Err(InterpError::Render { .. })
    ));
    assert!(matches!(
        eval("{{ 'a' | hash('nope') }}"),
        Err(InterpError::Render { .. })
    ));
}

#[test]
fn booleans_follow_reference_truthiness() {
    let record = json!({"x": 7, "empty": [], "s": "False"});
    let ctx = Context::new().record(&record);
    let cases = [
        ("{{ record['x'] > 5 }}", true),
        ("{{ record['x'] < 5 }}", false),
        ("{{ 'False' }}", false),
        ("{{ 'x' }}", true),
        ("{{ record.missing.x }}", false),
        ("{{ none }}", false),
        ("{{ record.empty }}", false),
        ("{{ record.s }}", false),
        ("{{ 0 }}", false),
        ("{{ '0.0' }}", false),
        ("{{ 'no' }}", true),
        ("True", true),
    ];
    for (source, expected) in cases {
        let condition = InterpolatedBoolean::new(source).unwrap();
        assert_eq!(condition.eval(&ctx).unwrap(), expected, "{source}");
    }
}

#[test]
fn mappings() {
    let config = json!({"key": "k1", "limit": "10", "empty": ""});
    let ctx = Context::new().config(&config);
    let mapping = json!({"{{ config.key }}": "{{ config.limit }}", "5": "a", "n": 3, "e": "{{ config.empty }}"});
    let mapping = InterpolatedMapping::new(mapping.as_object().unwrap()).unwrap();
    assert_eq!(
        mapping.eval(&ctx, &[]).unwrap(),
        *json!({"k1": 10, "5": "a", "n": 3, "e": null})
            .as_object()
            .unwrap()
    );
    assert_eq!(
        mapping
            .eval(&ctx, &[LiteralType::String, LiteralType::List])
            .unwrap(),
        *json!({"k1": "10", "5": "a", "n": 3, "e": null})
            .as_object()
            .unwrap()
    );

    let nested = json!({"a": {"b": "{{ config.limit }}", "gone": "{{ config.missing }}"}, "list": ["{{ config.key }}", 1]});
    let nested = InterpolatedNestedMapping::new(&nested).unwrap();
    assert_eq!(
        nested.eval(&ctx).unwrap(),
        json!({"a": {"b": 10}, "list": ["k1", 1]})
    );
}

#[test]
fn errors_name_the_template() {
    let error = Template::new("{{ config[ }}").unwrap_err();
    assert!(matches!(error, InterpError::Syntax { .. }));
    assert!(error.to_string().contains("{{ config[ }}"), "{error}");
}

#[test]
fn sandbox_has_no_range_or_includes() {
    assert!(eval("{{ range(3) | list }}").is_err());
    assert!(eval("{% include '/etc/passwd' %}").is_err());
}

#[test]
fn jinja2_statement_idioms() {
    let record = json!({"projects": [{"id": 1, "path_with_namespace": "a/b", "x": 2}]});
    let source = "{% set projects = [] %}\n{% for project in (record.get('projects') or []): %}\n{% set _ = projects.append({'id': project['id'], 'path_with_namespace': project['path_with_namespace']}) %}\n{% endfor %}\n{{ projects }}\n";
    let t = Template::new(source).unwrap();
    assert_eq!(
        t.render(&Context::new().record(&record)).unwrap(),
        json!([{"id": 1, "path_with_namespace": "a/b"}])
    );
}

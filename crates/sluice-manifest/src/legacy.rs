//! Stage 3: 0.1.0-era manifests onto the modern manifest.
//!
//! The reference (airbyte-cdk 7.x) no longer reads the syntax of the original low-code framework
//! (manifest `version: "0.1.0"`); this stage rewrites it so that a manifest of either era yields
//! the same model. Every rule matches a field or type name that the modern schema does not have,
//! so a modern manifest passes through unchanged.
//!
//! | 0.1.0 era | modern |
//! |---|---|
//! | `$options` | `$parameters` (templates keep reading `options`: the interpolation context exposes both names) |
//! | `checker` (top level) | `check` |
//! | `field_pointer` | `field_path` |
//! | `JelloExtractor` with `transform: "_.a.b"` | `DpathExtractor` with `field_path: [a, b]` |
//! | requester `request_options_provider: {request_parameters, ...}` | the same fields on the requester |
//! | `retriever.stream_slicer` | `DatetimeStreamSlicer` to the stream's `incremental_sync`, other slicers to `retriever.partition_router` |
//! | `DatetimeStreamSlicer` | `DatetimeBasedCursor`; `step`/`lookback_window` `"1d"` to `"P1D"`; `cursor_granularity: P1D` (the old slices ended one day before the next began); `stream_state_field_start/end` to `partition_field_start/end` |
//! | `ListStreamSlicer` (`slice_values`) | `ListPartitionRouter` (`values`) |
//! | `SubstreamSlicer` (`parent_streams_configs`, `stream_slice_field`) | `SubstreamPartitionRouter` (`parent_stream_configs`, `partition_field`) |
//! | `CartesianProductStreamSlicer` (`stream_slicers`) | a list of partition routers (their cartesian product) plus the cursor |
//! | `SingleSlice` | nothing |
//! | stream `stream_cursor_field` | the cursor's `cursor_field` when it has none |
//! | `LimitPaginator` (`page_size`, `limit_option`) | `DefaultPaginator` (strategy `page_size`, `page_size_option`) |
//! | paginator `url_base` | dropped: modern paginators use the requester's |
//! | `RequestOption` with `inject_into: path` | `RequestPath` |
//! | `page_token_option` without `type` (a `version: 0.1.x` manifest only) | `RequestOption` |
//! | `JsonSchema` | `JsonFileSchemaLoader` |
//! | `TokenAuthenticator` | `BearerAuthenticator`, or `ApiKeyAuthenticator` for another header or scheme |
//!
//! A stream without a schema loader, `primary_key`/`name` given in `$options` and `streams` listing
//! references need no rewrite: the modern defaults, parameter propagation and reference resolution
//! already give them their 0.1.0 meaning.

use crate::{ManifestError, ManifestErrorKind, ManifestPath};
use serde_json::{Map, Value, json};

/// Rewrites 0.1.0-era syntax of a resolved tree into the modern manifest.
///
/// ```
/// use serde_json::json;
/// let old = json!({"streams": [{"$options": {"name": "users"}, "retriever": {
///     "record_selector": {"extractor": {"field_pointer": ["data"]}},
///     "requester": {"request_options_provider": {"request_parameters": {"limit": "10"}}}}}]});
/// let new = sluice_manifest::legacy::upgrade(old).unwrap();
/// assert_eq!(new["streams"][0]["$parameters"], json!({"name": "users"}));
/// assert_eq!(new["streams"][0]["retriever"]["record_selector"]["extractor"]["field_path"], json!(["data"]));
/// assert_eq!(new["streams"][0]["retriever"]["requester"]["request_parameters"], json!({"limit": "10"}));
/// ```
pub fn upgrade(mut tree: Value) -> Result<Value, ManifestError> {
    let mut old_era = false;
    if let Value::Object(root) = &mut tree {
        if !root.contains_key("check") {
            if let Some(checker) = root.shift_remove("checker") {
                root.insert("check".to_owned(), checker);
            }
        }
        old_era = root
            .get("version")
            .and_then(Value::as_str)
            .is_some_and(|version| version.starts_with("0.1."));
    }
    upgrade_node(&mut tree, &ManifestPath::root(), old_era)?;
    Ok(tree)
}

fn upgrade_node(node: &mut Value, at: &ManifestPath, old_era: bool) -> Result<(), ManifestError> {
    match node {
        Value::Object(map) => {
            upgrade_fields(map, at)?;
            if old_era {
                type_page_token_option(map);
            }
            if map.get("inject_into").and_then(Value::as_str) == Some("path") {
                // The old page token option "inject into path" is the modern RequestPath.
                map.retain(|k, _| k == "$parameters");
                map.shift_insert(0, "type".to_owned(), json!("RequestPath"));
            }
            for (key, child) in map.iter_mut() {
                upgrade_node(child, &at.key(key), old_era)?;
            }
            move_stream_slicer(map, at)
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                upgrade_node(item, &at.index(i), old_era)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A 0.1.0-era `page_token_option` needed no `type`: it was a request option (a path when
/// `inject_into: path`, which [`upgrade_node`] rewrites). The reference now refuses one without a
/// type, so this applies to manifests of that era only.
fn type_page_token_option(map: &mut Map<String, Value>) {
    if let Some(Value::Object(option)) = map.get_mut("page_token_option") {
        let to_path = option.get("inject_into").and_then(Value::as_str) == Some("path");
        if !option.contains_key("type") && !to_path {
            option.shift_insert(0, "type".to_owned(), json!("RequestOption"));
        }
    }
}

/// The rules that only look at one mapping and its own keys.
fn upgrade_fields(map: &mut Map<String, Value>, at: &ManifestPath) -> Result<(), ManifestError> {
    if let Some(options) = map.shift_remove("$options") {
        let Value::Object(mut merged) = options else {
            return Err(invalid(at.key("$options"), "`$options` must be a mapping"));
        };
        if let Some(existing) = map.shift_remove("$parameters") {
            let Value::Object(existing) = existing else {
                return Err(invalid(
                    at.key("$parameters"),
                    "`$parameters` must be a mapping",
                ));
            };
            merged.extend(existing);
        }
        map.insert("$parameters".to_owned(), Value::Object(merged));
    }
    rename(map, "field_pointer", "field_path");
    if let Some(provider) = map.shift_remove("request_options_provider") {
        let Value::Object(provider) = provider else {
            return Err(invalid(
                at.key("request_options_provider"),
                "`request_options_provider` must be a mapping",
            ));
        };
        for field in [
            "request_parameters",
            "request_headers",
            "request_body_data",
            "request_body_json",
        ] {
            if let Some(value) = provider.get(field) {
                map.entry(field).or_insert_with(|| value.clone());
            }
        }
    }
    if let Some(Value::Object(slicer)) = map.get_mut("stream_slicer") {
        infer_slicer_type(slicer);
    }
    if map.contains_key("parent_key") {
        rename(map, "stream_slice_field", "partition_field");
    }
    let component_type = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match component_type.as_str() {
        "JelloExtractor" => upgrade_jello_extractor(map),
        "DpathExtractor" if !map.contains_key("field_path") => {
            rename(map, "transform", "field_path")
        }
        "DatetimeStreamSlicer" => {
            set_type(map, "DatetimeBasedCursor");
            if map.contains_key("step") && !map.contains_key("cursor_granularity") {
                map.insert("cursor_granularity".to_owned(), json!("P1D"));
            }
            upgrade_datetime_fields(map);
        }
        "DatetimeBasedCursor" => upgrade_datetime_fields(map),
        "ListStreamSlicer" => {
            set_type(map, "ListPartitionRouter");
            rename(map, "slice_values", "values");
        }
        "SubstreamSlicer" | "SubstreamPartitionRouter" => {
            set_type(map, "SubstreamPartitionRouter");
            rename(map, "parent_streams_configs", "parent_stream_configs");
        }
        "CartesianProductStreamSlicer" => {
            if let Some(Value::Array(slicers)) = map.get_mut("stream_slicers") {
                for slicer in slicers.iter_mut().filter_map(Value::as_object_mut) {
                    infer_slicer_type(slicer);
                }
            }
        }
        "JsonSchema" => set_type(map, "JsonFileSchemaLoader"),
        "LimitPaginator" => {
            set_type(map, "DefaultPaginator");
            rename(map, "limit_option", "page_size_option");
            if let Some(page_size) = map.shift_remove("page_size") {
                if let Some(Value::Object(strategy)) = map.get_mut("pagination_strategy") {
                    strategy.entry("page_size").or_insert(page_size);
                }
            }
            map.shift_remove("url_base");
        }
        "DefaultPaginator" => {
            map.shift_remove("url_base");
        }
        "TokenAuthenticator" => upgrade_token_authenticator(map),
        _ => {}
    }
    Ok(())
}

/// Gives an untyped 0.1.0 stream slicer the type its fields imply (the old factory defaulted
/// untyped slicers by their constructor, which the examples of the old docs relied on).
fn infer_slicer_type(slicer: &mut Map<String, Value>) {
    if slicer.contains_key("type") || slicer.contains_key("class_name") {
        return;
    }
    let implied = if slicer.contains_key("start_datetime") {
        "DatetimeStreamSlicer"
    } else if slicer.contains_key("slice_values") {
        "ListStreamSlicer"
    } else if slicer.contains_key("parent_stream_configs")
        || slicer.contains_key("parent_streams_configs")
    {
        "SubstreamSlicer"
    } else if slicer.contains_key("stream_slicers") {
        "CartesianProductStreamSlicer"
    } else {
        "SingleSlice"
    };
    slicer.shift_insert(0, "type".to_owned(), json!(implied));
}

fn upgrade_datetime_fields(map: &mut Map<String, Value>) {
    rename(map, "stream_state_field_start", "partition_field_start");
    rename(map, "stream_state_field_end", "partition_field_end");
    for field in ["step", "lookback_window"] {
        if let Some(Value::String(text)) = map.get_mut(field) {
            if let Some(iso) = old_duration_to_iso(text) {
                *text = iso;
            }
        }
    }
}

/// `"1d"`, `"2w"`, `"1w3d"` (the 0.1.0 slicer's duration syntax) as ISO 8601 durations.
fn old_duration_to_iso(text: &str) -> Option<String> {
    let (weeks, rest) = match text.split_once('w') {
        Some((w, rest)) => (Some(w), rest),
        None => (None, text),
    };
    let days = match rest {
        "" => None,
        _ => Some(rest.strip_suffix('d')?),
    };
    let number = |s: &str| -> Option<f64> {
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (weeks.map(number), days.map(number)) {
        (None, None) => None,
        (Some(w), None) => Some(format!("P{}W", trim_number(w?))),
        (None, Some(d)) => Some(format!("P{}D", trim_number(d?))),
        (Some(w), Some(d)) => Some(format!("P{}D", trim_number(w? * 7.0 + d?))),
    }
}

fn trim_number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

fn upgrade_jello_extractor(map: &mut Map<String, Value>) {
    // Only the jello expressions that are plain paths (`_`, `_.data.items`) have a modern form.
    let Some(path) = map
        .get("transform")
        .and_then(Value::as_str)
        .and_then(jello_path)
    else {
        return;
    };
    map.shift_remove("transform");
    set_type(map, "DpathExtractor");
    map.insert(
        "field_path".to_owned(),
        Value::Array(path.into_iter().map(Value::String).collect()),
    );
}

fn jello_path(expression: &str) -> Option<Vec<String>> {
    let mut parts = expression.trim().split('.');
    if parts.next()? != "_" {
        return None;
    }
    parts
        .map(|p| {
            let simple = !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            simple.then(|| p.to_owned())
        })
        .collect()
}

fn upgrade_token_authenticator(map: &mut Map<String, Value>) {
    let token = map.shift_remove("token").unwrap_or(Value::Null);
    let scheme = map.shift_remove("auth_method");
    let header = map.shift_remove("auth_header");
    let scheme_text = scheme
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or("Bearer")
        .to_owned();
    let header_text = header
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or("Authorization")
        .to_owned();
    if scheme_text == "Bearer" && header_text == "Authorization" {
        set_type(map, "BearerAuthenticator");
        map.insert("api_token".to_owned(), token);
    } else {
        set_type(map, "ApiKeyAuthenticator");
        map.insert("header".to_owned(), json!(header_text));
        let token_text = token.as_str().unwrap_or_default();
        let api_token = if scheme_text.is_empty() {
            token_text.to_owned()
        } else {
            format!("{scheme_text} {token_text}")
        };
        map.insert("api_token".to_owned(), json!(api_token));
    }
}

/// Moves a 0.1.0 `retriever.stream_slicer` of a stream to where the modern manifest keeps its
/// parts: the cursor on the stream, the partition routers on the retriever.
fn move_stream_slicer(
    stream: &mut Map<String, Value>,
    at: &ManifestPath,
) -> Result<(), ManifestError> {
    if !stream.contains_key("retriever") {
        return Ok(());
    }
    let slicer = match stream.get_mut("retriever") {
        Some(Value::Object(retriever)) => retriever.shift_remove("stream_slicer"),
        _ => None,
    };
    let slicer_at = at.key("retriever").key("stream_slicer");
    let mut cursors = Vec::new();
    let mut routers = Vec::new();
    if let Some(slicer) = slicer {
        split_slicer(slicer, &mut cursors, &mut routers);
    }
    if cursors.len() > 1 {
        return Err(invalid(
            slicer_at,
            "a stream slicer may hold only one datetime slicer",
        ));
    }
    if let Some(cursor) = cursors.pop() {
        if stream.contains_key("incremental_sync") {
            return Err(invalid(
                slicer_at,
                "the stream has both a datetime stream slicer and `incremental_sync`",
            ));
        }
        stream.insert("incremental_sync".to_owned(), cursor);
    }
    if !routers.is_empty() {
        let Some(Value::Object(retriever)) = stream.get_mut("retriever") else {
            return Ok(());
        };
        if retriever.contains_key("partition_router") {
            return Err(invalid(
                slicer_at,
                "the retriever has both a stream slicer and a `partition_router`",
            ));
        }
        let router = if routers.len() == 1 {
            routers.remove(0)
        } else {
            Value::Array(routers)
        };
        retriever.insert("partition_router".to_owned(), router);
    }
    if let Some(cursor_field) = stream.shift_remove("stream_cursor_field") {
        let cursor_field = match cursor_field {
            Value::Array(mut parts) if parts.len() == 1 => parts.remove(0),
            other => other,
        };
        if let Some(Value::Object(cursor)) = stream.get_mut("incremental_sync") {
            cursor.entry("cursor_field").or_insert(cursor_field);
        }
    }
    Ok(())
}

fn split_slicer(slicer: Value, cursors: &mut Vec<Value>, routers: &mut Vec<Value>) {
    let component_type = slicer
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match component_type.as_str() {
        "DatetimeBasedCursor" => cursors.push(slicer),
        "SingleSlice" => {}
        "CartesianProductStreamSlicer" => {
            if let Some(Value::Array(parts)) = slicer.get("stream_slicers") {
                for part in parts.clone() {
                    split_slicer(part, cursors, routers);
                }
            }
        }
        _ => routers.push(slicer),
    }
}

fn rename(map: &mut Map<String, Value>, old: &str, new: &str) {
    if map.contains_key(new) {
        return;
    }
    // Keep the renamed field where it was, so the tree reads like the manifest.
    let Some(index) = map.keys().position(|k| k == old) else {
        return;
    };
    if let Some(value) = map.shift_remove(old) {
        map.shift_insert(index, new.to_owned(), value);
    }
}

fn set_type(map: &mut Map<String, Value>, component_type: &str) {
    map.insert("type".to_owned(), json!(component_type));
}

fn invalid(at: ManifestPath, message: &str) -> ManifestError {
    ManifestError::new(at, ManifestErrorKind::InvalidValue, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_page_token_option_without_type_is_a_request_option_or_a_path() {
        let paginator = |option: Value| json!({"version": "0.1.0", "streams": [{"retriever": {"paginator": {"page_token_option": option}}}]});
        let option_of = |tree: Value| {
            upgrade(tree).unwrap()["streams"][0]["retriever"]["paginator"]["page_token_option"]
                .clone()
        };
        assert_eq!(
            option_of(paginator(
                json!({"inject_into": "request_parameter", "field_name": "page"})
            )),
            json!({"type": "RequestOption", "inject_into": "request_parameter", "field_name": "page"})
        );
        assert_eq!(
            option_of(paginator(json!({"inject_into": "path"}))),
            json!({"type": "RequestPath"})
        );
        // A modern manifest is left as written: the reference refuses it, and so does sluice.
        let mut modern =
            paginator(json!({"inject_into": "request_parameter", "field_name": "page"}));
        modern["version"] = json!("6.7.0");
        assert_eq!(
            option_of(modern),
            json!({"inject_into": "request_parameter", "field_name": "page"})
        );
    }

    #[test]
    fn converts_old_durations() {
        assert_eq!(old_duration_to_iso("1d").as_deref(), Some("P1D"));
        assert_eq!(old_duration_to_iso("2w").as_deref(), Some("P2W"));
        assert_eq!(old_duration_to_iso("1w3d").as_deref(), Some("P10D"));
        assert_eq!(old_duration_to_iso("P1D"), None);
        assert_eq!(old_duration_to_iso("{{ config.days }}d"), None);
    }

    #[test]
    fn reads_plain_jello_paths_only() {
        assert_eq!(
            jello_path("_.data.items"),
            Some(vec!["data".to_owned(), "items".to_owned()])
        );
        assert_eq!(jello_path("_"), Some(vec![]));
        assert_eq!(jello_path("[x for x in _]"), None);
    }
}

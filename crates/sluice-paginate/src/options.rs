//! Where the paginator puts the page size and the page token in a request.

use crate::error::BuildError;
use crate::python::push_form_pairs;
use serde_json::{Map, Value};
use sluice_interp::{Context, Template, python_str};
use sluice_manifest::ManifestPath;
use sluice_manifest::model;

/// What the paginator adds to one request, in the shape the reference's `SimpleRetriever` merges
/// into the requester's own options.
///
/// `query`, `headers` and `body_data` hold `(name, value)` pairs already converted the way
/// Python's `requests` sends them; `body_json` is merged into the JSON body; `path` is a
/// `RequestPath` token: the page's path or full URL, which replaces the requester's `path` and
/// is joined to `url_base` with Python's `urljoin` (its leading `/` is kept, so `/v2/items`
/// replaces the base's path while `items` is appended to it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageRequestOptions {
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Fields of a JSON body (nested when a `field_path` was used).
    pub body_json: Map<String, Value>,
    /// Fields of a form-encoded body.
    pub body_data: Vec<(String, String)>,
    /// The next page's path or URL (`RequestPath`).
    pub path: Option<String>,
}

impl PageRequestOptions {
    /// Whether the paginator adds nothing to the request.
    pub fn is_empty(&self) -> bool {
        self.query.is_empty()
            && self.headers.is_empty()
            && self.body_json.is_empty()
            && self.body_data.is_empty()
            && self.path.is_none()
    }
}

/// Where a `RequestOption` injects: the manifest's `inject_into`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Query,
    Header,
    BodyData,
    BodyJson,
}

impl Target {
    fn from_model(inject_into: model::InjectInto) -> Self {
        match inject_into {
            model::InjectInto::RequestParameter => Target::Query,
            model::InjectInto::Header => Target::Header,
            model::InjectInto::BodyData => Target::BodyData,
            model::InjectInto::BodyJson => Target::BodyJson,
        }
    }
}

/// A runtime `RequestOption`: where and under which name a value goes.
///
/// The name (or each segment of the path) is a template over `config` only; the config does not
/// change during a run, so it is rendered once when the paginator is built.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOption {
    pub(crate) target: Target,
    /// `field_name` rendered, or the `field_path` segments rendered (body JSON only).
    key: Vec<String>,
}

impl RequestOption {
    pub fn from_model(
        option: &model::RequestOption,
        config: &Value,
        path: &ManifestPath,
    ) -> Result<Self, BuildError> {
        let target = Target::from_model(option.inject_into);
        let invalid = |message: &str| BuildError::Invalid {
            path: path.to_string(),
            message: message.to_owned(),
        };
        let key = match (&option.field_name, &option.field_path) {
            (None, None) => {
                return Err(invalid(
                    "RequestOption requires either a field_name or field_path",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "Only one of field_name or field_path can be provided to RequestOption",
                ));
            }
            (None, Some(_)) if target != Target::BodyJson => {
                return Err(invalid(
                    "Nested field injection is only supported for body JSON injection. Please use a \
                     top-level field_name for other injection types.",
                ));
            }
            (Some(name), None) => vec![render_key(name, config, &path.key("field_name"))?],
            (None, Some(segments)) => {
                let at = path.key("field_path");
                let rendered = segments
                    .iter()
                    .enumerate()
                    .map(|(index, segment)| render_key(segment, config, &at.index(index)))
                    .collect::<Result<Vec<_>, _>>()?;
                if rendered.is_empty() {
                    return Err(invalid("field_path must name at least one field"));
                }
                rendered
            }
        };
        Ok(RequestOption { target, key })
    }

    /// Puts `value` into `options` at this option's place.
    pub fn inject(&self, options: &mut PageRequestOptions, value: &Value) {
        let Some((last, parents)) = self.key.split_last() else {
            return;
        };
        match self.target {
            Target::Query => push_form_pairs(last, value, &mut options.query),
            Target::BodyData => push_form_pairs(last, value, &mut options.body_data),
            Target::Header => options.headers.push((last.clone(), python_str(value))),
            Target::BodyJson => {
                let mut current = &mut options.body_json;
                for part in parents {
                    let slot = current
                        .entry(part.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !slot.is_object() {
                        *slot = Value::Object(Map::new());
                    }
                    let Value::Object(next) = slot else {
                        return;
                    };
                    current = next;
                }
                current.insert(last.clone(), value.clone());
            }
        }
    }
}

/// Renders a `field_name` or `field_path` segment with the config, as Python's `str()` of the
/// literal-evaluated result (the reference gives these templates no `$parameters`).
fn render_key(source: &str, config: &Value, path: &ManifestPath) -> Result<String, BuildError> {
    let template_error = |source| BuildError::Template {
        path: path.to_string(),
        source,
    };
    let template = Template::new(source).map_err(template_error)?;
    let no_parameters = Value::Object(Map::new());
    let ctx = Context::new().config(config).parameters(&no_parameters);
    let rendered = template.render(&ctx).map_err(template_error)?;
    Ok(match rendered {
        Value::String(text) => text,
        other => python_str(&other),
    })
}

/// Rejects a page size option and a page token option that would write the same key, as the
/// reference does when it builds the paginator (body JSON may share parent objects).
pub(crate) fn check_no_collision(
    first: &RequestOption,
    second: &RequestOption,
    path: &ManifestPath,
) -> Result<(), BuildError> {
    if first.target != second.target {
        return Ok(());
    }
    let collides = match first.target {
        // Nested body JSON only collides where one path ends on or inside the other.
        Target::BodyJson => {
            let shared = first.key.len().min(second.key.len());
            first.key[..shared] == second.key[..shared]
        }
        _ => first.key.last() == second.key.last(),
    };
    if !collides {
        return Ok(());
    }
    let shared = first.key.len().min(second.key.len());
    Err(BuildError::Invalid {
        path: path.to_string(),
        message: format!(
            "Request body collision, duplicate keys detected at key path: {}. Please ensure that all \
             keys in the request are unique.",
            first.key[..shared].join(".")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn option(
        inject_into: model::InjectInto,
        name: Option<&str>,
        path: Option<&[&str]>,
    ) -> model::RequestOption {
        model::RequestOption {
            inject_into,
            field_name: name.map(str::to_owned),
            field_path: path.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn build(model: &model::RequestOption, config: &Value) -> Result<RequestOption, BuildError> {
        RequestOption::from_model(
            model,
            config,
            &ManifestPath::parse("paginator.page_token_option"),
        )
    }

    #[test]
    fn injects_into_every_target() {
        let config = json!({"name": "cursor"});
        let mut options = PageRequestOptions::default();
        for inject_into in [
            model::InjectInto::RequestParameter,
            model::InjectInto::Header,
            model::InjectInto::BodyData,
            model::InjectInto::BodyJson,
        ] {
            let option = build(
                &option(inject_into, Some("{{ config['name'] }}"), None),
                &config,
            )
            .unwrap();
            option.inject(&mut options, &json!(25));
        }
        assert_eq!(options.query, vec![("cursor".to_owned(), "25".to_owned())]);
        assert_eq!(
            options.headers,
            vec![("cursor".to_owned(), "25".to_owned())]
        );
        assert_eq!(
            options.body_data,
            vec![("cursor".to_owned(), "25".to_owned())]
        );
        assert_eq!(Value::Object(options.body_json), json!({"cursor": 25}));
    }

    #[test]
    fn field_path_nests_body_json_and_keeps_siblings() {
        let config = json!({"kind": "users"});
        let token = build(
            &option(
                model::InjectInto::BodyJson,
                None,
                Some(&["variables", "{{ config.kind }}", "after"]),
            ),
            &config,
        )
        .unwrap();
        let size = build(
            &option(
                model::InjectInto::BodyJson,
                None,
                Some(&["variables", "first"]),
            ),
            &config,
        )
        .unwrap();
        let mut options = PageRequestOptions::default();
        token.inject(&mut options, &json!("abc"));
        size.inject(&mut options, &json!(50));
        assert_eq!(
            Value::Object(options.body_json),
            json!({"variables": {"users": {"after": "abc"}, "first": 50}})
        );
    }

    #[test]
    fn rejects_invalid_options_naming_the_path() {
        let config = json!({});
        let neither = build(&option(model::InjectInto::Header, None, None), &config).unwrap_err();
        assert!(
            neither
                .to_string()
                .starts_with("paginator.page_token_option: RequestOption requires")
        );
        let both = build(
            &option(model::InjectInto::BodyJson, Some("a"), Some(&["a"])),
            &config,
        )
        .unwrap_err();
        assert!(
            both.to_string()
                .contains("Only one of field_name or field_path")
        );
        let nested_query = build(
            &option(model::InjectInto::RequestParameter, None, Some(&["a", "b"])),
            &config,
        )
        .unwrap_err();
        assert!(
            nested_query
                .to_string()
                .contains("only supported for body JSON")
        );
    }

    #[test]
    fn collisions_are_detected_per_target() {
        let config = json!({});
        let path = ManifestPath::parse("paginator");
        let query_a = build(
            &option(model::InjectInto::RequestParameter, Some("a"), None),
            &config,
        )
        .unwrap();
        let header_a = build(&option(model::InjectInto::Header, Some("a"), None), &config).unwrap();
        assert!(check_no_collision(&query_a, &header_a, &path).is_ok());
        assert!(check_no_collision(&query_a, &query_a.clone(), &path).is_err());
        let deep = build(
            &option(model::InjectInto::BodyJson, None, Some(&["v", "after"])),
            &config,
        )
        .unwrap();
        let sibling = build(
            &option(model::InjectInto::BodyJson, None, Some(&["v", "first"])),
            &config,
        )
        .unwrap();
        let parent = build(
            &option(model::InjectInto::BodyJson, Some("v"), None),
            &config,
        )
        .unwrap();
        assert!(check_no_collision(&deep, &sibling, &path).is_ok());
        let error = check_no_collision(&deep, &parent, &path).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("duplicate keys detected at key path: v")
        );
    }
}

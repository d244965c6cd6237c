//! Builds runtime streams from the typed model (the reference's component factory).
//!
//! Every error names the manifest path of the component it comes from.

use crate::stream::{Retriever, Stream};
use crate::support::unsupported_components;
use crate::{EngineError, SourceOptions};
use serde_json::{Map, Value};
use sluice_http::auth::{Authenticator, InjectInto};
use sluice_http::{ErrorHandler, Method, RequestMapping, Requester, UrlSource};
use sluice_interp::{Context, Template};
use sluice_manifest::model::{self, StreamEntry};
use sluice_manifest::{Manifest, ManifestPath};
use sluice_protocol::ConnectorSpecification;
use sluice_records::DpathExtractor;
use std::path::Path;
use std::sync::Arc;

/// Everything a component needs while it is built.
struct Builder<'a> {
    config: &'a Arc<Value>,
    options: &'a SourceOptions,
}

fn at(path: &ManifestPath, message: impl std::fmt::Display) -> EngineError {
    EngineError::config(format!("manifest at {path}: {message}"))
}

/// Builds every stream, refusing a manifest with components sluice cannot run.
pub(crate) fn streams(
    manifest: &Manifest,
    config: &Arc<Value>,
    options: &SourceOptions,
) -> Result<Vec<Stream>, EngineError> {
    let unsupported = unsupported_components(manifest);
    if !unsupported.is_empty() {
        let list: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
        return Err(EngineError::config(format!(
            "sluice cannot run this manifest: {}",
            list.join("; ")
        )));
    }
    let builder = Builder { config, options };
    let root = ManifestPath::root().key("streams");
    let mut streams = Vec::new();
    for (index, entry) in manifest.model.streams.iter().flatten().enumerate() {
        let path = root.index(index);
        match entry {
            StreamEntry::DeclarativeStream(stream) => streams.push(builder.stream(stream, &path)?),
            other => {
                return Err(at(
                    &path,
                    format!("{} is not supported yet", variant_name(other)),
                ));
            }
        }
    }
    Ok(streams)
}

fn variant_name(entry: &StreamEntry) -> &'static str {
    match entry {
        StreamEntry::ConditionalStreams(_) => "ConditionalStreams",
        StreamEntry::DeclarativeStream(_) => "DeclarativeStream",
        StreamEntry::StateDelegatingStream(_) => "StateDelegatingStream",
    }
}

impl Builder<'_> {
    fn stream(
        &self,
        stream: &model::DeclarativeStream,
        path: &ManifestPath,
    ) -> Result<Stream, EngineError> {
        let name = stream.name.clone().unwrap_or_default();
        let parameters = parameters_value(stream.parameters.as_ref());
        let primary_key = match &stream.primary_key {
            None => Vec::new(),
            Some(model::PrimaryKey::String(key)) if key.is_empty() => Vec::new(),
            Some(model::PrimaryKey::String(key)) => vec![vec![key.clone()]],
            Some(model::PrimaryKey::List(keys)) => keys.iter().map(|k| vec![k.clone()]).collect(),
            Some(model::PrimaryKey::ListOfLists(keys)) => keys.clone(),
        };
        let json_schema = self.schema(stream, &name, &parameters, &path.key("schema_loader"))?;
        let retriever = match &stream.retriever {
            model::Retriever::SimpleRetriever(r) => self.retriever(r, &path.key("retriever"))?,
            _ => {
                return Err(at(
                    &path.key("retriever"),
                    "only SimpleRetriever is supported yet",
                ));
            }
        };
        Ok(Stream {
            name,
            primary_key,
            json_schema,
            retriever,
        })
    }

    fn schema(
        &self,
        stream: &model::DeclarativeStream,
        name: &str,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Map<String, Value>, EngineError> {
        match &stream.schema_loader {
            None => Ok(self
                .schema_file(None, name, parameters, path)
                .unwrap_or_default()),
            Some(model::StreamSchemaLoader::InlineSchemaLoader(inline)) => {
                Ok(inline.schema.clone().unwrap_or_default())
            }
            Some(model::StreamSchemaLoader::JsonFileSchemaLoader(file)) => {
                self.schema_file(file.file_path.as_deref(), name, parameters, path)
            }
            Some(_) => Err(at(path, "this schema loader is not supported yet")),
        }
    }

    /// A JsonFileSchemaLoader: the file relative to the manifest's folder; by default
    /// `schemas/<stream>.json`. The reference reads `./source_<name>/schemas/...` from its
    /// Python package; a manifest-only connector keeps `schemas/` beside the manifest, so that
    /// prefix is dropped when the path does not exist as written.
    fn schema_file(
        &self,
        file_path: Option<&str>,
        name: &str,
        parameters: &Value,
        path: &ManifestPath,
    ) -> Result<Map<String, Value>, EngineError> {
        let rendered = match file_path.filter(|p| !p.is_empty()) {
            Some(template) => {
                let ctx = Context::new().config(&**self.config).parameters(parameters);
                compile(template, &path.key("file_path"))?
                    .render_string(&ctx)
                    .map_err(|e| at(&path.key("file_path"), e))?
            }
            None => format!("schemas/{name}.json"),
        };
        let base = self
            .options
            .manifest_dir
            .as_deref()
            .unwrap_or(Path::new("."));
        let mut candidates = vec![base.join(&rendered)];
        let relative = rendered.trim_start_matches("./");
        if let Some((first, rest)) = relative.split_once('/') {
            if first.starts_with("source_") {
                candidates.push(base.join(rest));
            }
        }
        let file = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
            at(
                path,
                format!("schema file not found: {}", candidates[0].display()),
            )
        })?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| at(path, format!("cannot read {}: {e}", file.display())))?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(schema)) => Ok(schema),
            Ok(_) => Err(at(
                path,
                format!("{} does not hold a JSON object", file.display()),
            )),
            Err(e) => Err(at(
                path,
                format!("{} is not valid JSON: {e}", file.display()),
            )),
        }
    }

    fn retriever(
        &self,
        retriever: &model::SimpleRetriever,
        path: &ManifestPath,
    ) -> Result<Retriever, EngineError> {
        let requester = match &retriever.requester {
            model::Requester::HttpRequester(r) => self.requester(r, &path.key("requester"))?,
            model::Requester::CustomRequester(_) => {
                return Err(at(
                    &path.key("requester"),
                    "custom requesters cannot run in sluice",
                ));
            }
        };
        let selector = &retriever.record_selector;
        let extractor_path = path.key("record_selector").key("extractor");
        let extractor = match &selector.extractor {
            model::RecordExtractor::DpathExtractor(dpath) => {
                let parameters = parameters_value(dpath.parameters.as_ref());
                let ctx = Context::new()
                    .config(&**self.config)
                    .parameters(&parameters);
                let segments = dpath
                    .field_path
                    .iter()
                    .enumerate()
                    .map(|(i, segment)| {
                        let segment_path = extractor_path.key("field_path").index(i);
                        compile(segment, &segment_path)?
                            .render_string(&ctx)
                            .map_err(|e| at(&segment_path, e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                DpathExtractor::new(segments)
            }
            _ => return Err(at(&extractor_path, "only DpathExtractor is supported yet")),
        };
        Ok(Retriever {
            requester,
            extractor,
        })
    }

    fn requester(
        &self,
        requester: &model::HttpRequester,
        path: &ManifestPath,
    ) -> Result<Requester, EngineError> {
        let parameters = parameters_value(requester.parameters.as_ref());
        let template =
            |field: &str, source: &Option<String>| -> Result<Option<Template>, EngineError> {
                source
                    .as_deref()
                    .map(|s| compile(s, &path.key(field)))
                    .transpose()
            };
        let path_template = template("path", &requester.path)?;
        let url = match (
            template("url", &requester.url)?,
            template("url_base", &requester.url_base)?,
        ) {
            (Some(url), _) => UrlSource::Url {
                url,
                path: path_template,
            },
            (None, Some(url_base)) => UrlSource::BaseAndPath {
                url_base,
                path: path_template,
            },
            (None, None) => return Err(at(path, "missing required field 'url' (or 'url_base')")),
        };
        let method = match requester.http_method {
            None | Some(model::HttpMethod::Get) => Method::Get,
            Some(model::HttpMethod::Post) => Method::Post,
        };
        let params = match &requester.request_parameters {
            None => RequestMapping::default(),
            Some(model::RequestParameters::Map(map)) => {
                let mut plain = Map::new();
                for (key, value) in map {
                    match value {
                        model::RequestParameterValue::String(s) => {
                            plain.insert(key.clone(), Value::String(s.clone()));
                        }
                        model::RequestParameterValue::QueryProperties(_) => {
                            return Err(at(
                                &path.key("request_parameters").key(key),
                                "QueryProperties is not supported yet",
                            ));
                        }
                    }
                }
                mapping(&plain, &path.key("request_parameters"))?
            }
            Some(model::RequestParameters::String(_)) => {
                return Err(at(
                    &path.key("request_parameters"),
                    "a string of request parameters is not supported yet",
                ));
            }
        };
        let headers = match &requester.request_headers {
            None => RequestMapping::default(),
            Some(model::StringOrStringMap::Map(map)) => {
                let plain: Map<String, Value> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                mapping(&plain, &path.key("request_headers"))?
            }
            Some(model::StringOrStringMap::String(_)) => {
                return Err(at(
                    &path.key("request_headers"),
                    "a string of request headers is not supported yet",
                ));
            }
        };
        let authenticator = match &requester.authenticator {
            None => Authenticator::none(),
            Some(auth) => self.authenticator(auth, &path.key("authenticator"))?,
        };
        Ok(Requester {
            origin: path.to_string(),
            url,
            method,
            params,
            headers,
            authenticator,
            error_handler: ErrorHandler::default(),
            transport: Arc::clone(&self.options.transport),
            config: Arc::clone(self.config),
            parameters,
        })
    }

    /// The simple authenticators read only the config, so they are rendered once here.
    fn authenticator(
        &self,
        auth: &model::Authenticator,
        path: &ManifestPath,
    ) -> Result<Authenticator, EngineError> {
        let render =
            |source: &str, field: &str, parameters: &Value| -> Result<String, EngineError> {
                let ctx = Context::new().config(&**self.config).parameters(parameters);
                compile(source, &path.key(field))?
                    .render_string(&ctx)
                    .map_err(|e| at(&path.key(field), e))
            };
        match auth {
            model::Authenticator::NoAuth(_) => Ok(Authenticator::none()),
            model::Authenticator::BearerAuthenticator(bearer) => {
                let parameters = parameters_value(bearer.parameters.as_ref());
                Ok(Authenticator::bearer(&render(
                    &bearer.api_token,
                    "api_token",
                    &parameters,
                )?))
            }
            model::Authenticator::BasicHttpAuthenticator(basic) => {
                let parameters = parameters_value(basic.parameters.as_ref());
                let username = render(&basic.username, "username", &parameters)?;
                let password = render(
                    basic.password.as_deref().unwrap_or(""),
                    "password",
                    &parameters,
                )?;
                Ok(Authenticator::basic(&username, &password))
            }
            model::Authenticator::ApiKeyAuthenticator(key) => {
                let parameters = parameters_value(key.parameters.as_ref());
                let token = render(
                    key.api_token.as_deref().unwrap_or(""),
                    "api_token",
                    &parameters,
                )?;
                let (into, name) = match (&key.inject_into, &key.header) {
                    (Some(_), Some(_)) => {
                        return Err(at(
                            path,
                            "inject_into and header cannot both be set (header is deprecated)",
                        ));
                    }
                    (None, None) => {
                        return Err(at(path, "either inject_into or header must be set"));
                    }
                    (None, Some(header)) => {
                        (InjectInto::Header, render(header, "header", &parameters)?)
                    }
                    (Some(option), None) => {
                        let into = match option.inject_into {
                            model::InjectInto::Header => InjectInto::Header,
                            model::InjectInto::RequestParameter => InjectInto::RequestParameter,
                            model::InjectInto::BodyJson => InjectInto::BodyJson,
                            model::InjectInto::BodyData => InjectInto::BodyData,
                        };
                        let field = option.field_name.as_deref().ok_or_else(|| {
                            at(
                                &path.key("inject_into"),
                                "missing required field 'field_name'",
                            )
                        })?;
                        (into, render(field, "inject_into.field_name", &parameters)?)
                    }
                };
                Ok(Authenticator::api_key(into, &name, &token))
            }
            _ => Err(at(path, "this authenticator is not supported yet")),
        }
    }
}

fn compile(source: &str, path: &ManifestPath) -> Result<Template, EngineError> {
    Template::new(source).map_err(|e| at(path, e))
}

fn mapping(map: &Map<String, Value>, path: &ManifestPath) -> Result<RequestMapping, EngineError> {
    RequestMapping::new(map).map_err(|e| at(path, e))
}

fn parameters_value(parameters: Option<&Map<String, Value>>) -> Value {
    Value::Object(parameters.cloned().unwrap_or_default())
}

/// The manifest's spec as `spec` prints it.
pub(crate) fn spec(manifest: &Manifest) -> ConnectorSpecification {
    let Some(spec) = &manifest.model.spec else {
        return crate::generic_spec();
    };
    let mut out = ConnectorSpecification::new(spec.connection_specification.clone());
    out.documentation_url = spec.documentation_url.clone();
    out
}

/// The streams the manifest's check reads.
pub(crate) fn check_stream_names(manifest: &Manifest) -> Result<Vec<String>, EngineError> {
    match &manifest.model.check {
        model::Check::CheckStream(check) => Ok(check.stream_names.clone().unwrap_or_default()),
        model::Check::CheckDynamicStream(_) => Err(at(
            &ManifestPath::root().key("check"),
            "CheckDynamicStream is not supported yet",
        )),
    }
}

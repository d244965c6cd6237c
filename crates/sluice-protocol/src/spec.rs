//! SPEC: the connector's configuration schema and its authentication metadata.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::DestinationSyncMode;
use crate::json::omit_top_level_nulls;

// The reference defaults both flags to `False`, so a spec that never mentions them still
// prints `"supportsNormalization":false,"supportsDBT":false`.
fn some_false() -> Option<bool> {
    Some(false)
}

/// The answer to `spec`. Field order is the reference's output order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectorSpecification {
    /// The JSON Schema the config must satisfy.
    #[serde(
        rename = "connectionSpecification",
        serialize_with = "omit_top_level_nulls::serialize"
    )]
    pub connection_specification: Map<String, Value>,
    #[serde(
        rename = "documentationUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub documentation_url: Option<String>,
    #[serde(
        rename = "changelogUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub changelog_url: Option<String>,
    #[serde(
        rename = "supportsIncremental",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_incremental: Option<bool>,
    #[serde(
        rename = "supportsNormalization",
        default = "some_false",
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_normalization: Option<bool>,
    #[serde(
        rename = "supportsDBT",
        default = "some_false",
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_dbt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_destination_sync_modes: Option<Vec<DestinationSyncMode>>,
    /// Deprecated in favour of `advanced_auth`.
    #[serde(
        rename = "authSpecification",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_specification: Option<AuthSpecification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_auth: Option<AdvancedAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
}

impl ConnectorSpecification {
    /// A specification with the reference's defaults around the given config schema.
    pub fn new(connection_specification: Map<String, Value>) -> Self {
        Self {
            connection_specification,
            documentation_url: None,
            changelog_url: None,
            supports_incremental: None,
            supports_normalization: some_false(),
            supports_dbt: some_false(),
            supported_destination_sync_modes: None,
            auth_specification: None,
            advanced_auth: None,
            protocol_version: None,
        }
    }
}

/// `authSpecification.auth_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthType {
    #[serde(rename = "oauth2.0")]
    OAuth2,
}

/// The deprecated `authSpecification`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthSpecification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    #[serde(
        rename = "oauth2Specification",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oauth2_specification: Option<OAuth2Specification>,
}

/// A step of `rootObject`: a property name or an index into a `oneOf`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RootObjectStep {
    Property(String),
    Index(i64),
}

/// The deprecated OAuth description inside `authSpecification`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuth2Specification {
    #[serde(
        rename = "rootObject",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub root_object: Option<Vec<RootObjectStep>>,
    #[serde(
        rename = "oauthFlowInitParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oauth_flow_init_parameters: Option<Vec<Vec<String>>>,
    #[serde(
        rename = "oauthFlowOutputParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oauth_flow_output_parameters: Option<Vec<Vec<String>>>,
}

/// `advanced_auth.auth_flow_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthFlowType {
    #[serde(rename = "oauth2.0")]
    OAuth2,
    #[serde(rename = "oauth1.0")]
    OAuth1,
}

/// How the platform runs an OAuth flow for this connector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdvancedAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_flow_type: Option<AuthFlowType>,
    /// Path in the config to the field that selects OAuth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate_key: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_config_specification: Option<OAuthConfigSpecification>,
}

/// The JSON Schemas and templates of an OAuth flow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthConfigSpecification {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub oauth_user_input_from_connector_config_specification: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_connector_input_specification: Option<OAuthConnectorInputSpecification>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub complete_oauth_output_specification: Option<Map<String, Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub complete_oauth_server_input_specification: Option<Map<String, Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub complete_oauth_server_output_specification: Option<Map<String, Value>>,
}

/// The declarative OAuth templates (consent and token URLs, key overrides, scopes).
///
/// Includes `scopes`, `optional_scopes` and `scopes_join_strategy`, which the reference adds
/// on top of the protocol model for declarative OAuth connectors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthConnectorInputSpecification {
    pub consent_url: String,
    pub access_token_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option_list"
    )]
    pub scopes: Option<Vec<Map<String, Value>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option_list"
    )]
    pub optional_scopes: Option<Vec<Map<String, Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_join_strategy: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub access_token_headers: Option<Map<String, Value>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "omit_top_level_nulls::option"
    )]
    pub access_token_params: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_output: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<OAuthStateSpecification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expiry_key: Option<String>,
}

/// Length bounds of the OAuth `state` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthStateSpecification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

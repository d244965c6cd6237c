//! How generated types and variants are named.
//!
//! Definitions keep their schema name. Types the schema writes inline (unions, string enums,
//! nested objects) get the names below; one not listed is named after where it appears
//! (`OwnerField`, plus `Item` for list items and `Value` for map values) and the generator
//! prints a note so the table can be extended.

/// Unions, keyed by their variants' Rust types (order does not matter).
const UNION_NAMES: &[(&str, &str)] = &[
    ("CheckStream | CheckDynamicStream", "Check"),
    (
        "ConditionalStreams | DeclarativeStream | StateDelegatingStream",
        "StreamEntry",
    ),
    ("DeclarativeStream | StateDelegatingStream", "Stream"),
    ("HttpRequester | CustomRequester", "Requester"),
    (
        "DpathExtractor | CustomRecordExtractor | CombinedExtractor",
        "RecordExtractor",
    ),
    (
        "DpathExtractor | CustomRecordExtractor",
        "DpathOrCustomExtractor",
    ),
    (
        "DpathExtractor | CustomRecordExtractor | ResponseToFileExtractor | CombinedExtractor",
        "DownloadExtractor",
    ),
    (
        "SimpleRetriever | AsyncRetriever | CustomRetriever",
        "Retriever",
    ),
    (
        "SimpleRetriever | CustomRetriever",
        "SimpleOrCustomRetriever",
    ),
    (
        "AddFields | RemoveFields | KeysToLower | KeysToSnakeCase | FlattenFields | \
         DpathFlattenFields | KeysReplace | CustomTransformation",
        "RecordTransformation",
    ),
    ("RecordFilter | CustomRecordFilter", "AnyRecordFilter"),
    (
        "SchemaNormalization | CustomSchemaNormalization",
        "AnySchemaNormalization",
    ),
    (
        "CsvDecoder | GzipDecoder | JsonDecoder | JsonItemsDecoder | JsonlDecoder",
        "InnerDecoder",
    ),
    (
        "CsvDecoder | GzipDecoder | JsonDecoder | JsonItemsDecoder | JsonlDecoder | \
         IterableDecoder | XmlDecoder | ZipfileDecoder | CustomDecoder",
        "Decoder",
    ),
    ("JsonDecoder | XmlDecoder", "SessionTokenDecoder"),
    ("DefaultPaginator | NoPagination", "Paginator"),
    (
        "PageIncrement | OffsetIncrement | CursorPagination | CustomPaginationStrategy",
        "PaginationStrategy",
    ),
    ("RequestOption | RequestPath", "PageTokenOption"),
    (
        "ConfigRemapField | ConfigAddFields | ConfigRemoveFields | CustomConfigTransformation",
        "ConfigTransformation",
    ),
    ("DpathValidator | PredicateValidator", "ConfigValidator"),
    (
        "ValidateAdheresToSchema | CustomValidationStrategy",
        "ValidationStrategy",
    ),
    (
        "ListPartitionRouter | SubstreamPartitionRouter | UnionPartitionRouter | \
         CustomPartitionRouter",
        "UnderlyingPartitionRouter",
    ),
    (
        "ListPartitionRouter | SubstreamPartitionRouter | GroupingPartitionRouter | \
         UnionPartitionRouter | CustomPartitionRouter",
        "PartitionRouter",
    ),
    (
        "ListPartitionRouter | SubstreamPartitionRouter | GroupingPartitionRouter | \
         UnionPartitionRouter | CustomPartitionRouter | Vec<PartitionRouter>",
        "StreamPartitionRouter",
    ),
    (
        "ApiKeyAuthenticator | BasicHttpAuthenticator | BearerAuthenticator | OAuthAuthenticator | \
         JwtAuthenticator | SessionTokenAuthenticator | SelectiveAuthenticator | \
         CustomAuthenticator | NoAuth | LegacySessionTokenAuthenticator | \
         RateLimitedMultipleTokenAuthenticator",
        "Authenticator",
    ),
    (
        "ApiKeyAuthenticator | BasicHttpAuthenticator | BearerAuthenticator | OAuthAuthenticator | \
         JwtAuthenticator | SessionTokenAuthenticator | CustomAuthenticator | NoAuth | \
         LegacySessionTokenAuthenticator | RateLimitedMultipleTokenAuthenticator",
        "SelectableAuthenticator",
    ),
    (
        "SessionTokenRequestApiKeyAuthenticator | SessionTokenRequestBearerAuthenticator",
        "SessionTokenRequestAuthentication",
    ),
    (
        "CompositeErrorHandler | DefaultErrorHandler | CustomErrorHandler",
        "ErrorHandler",
    ),
    (
        "ConstantBackoffStrategy | ExponentialBackoffStrategy | WaitTimeFromHeader | \
         WaitTimeFromResponse | WaitUntilTimeFromHeader | CustomBackoffStrategy",
        "BackoffStrategy",
    ),
    (
        "FixedWindowCallRatePolicy | MovingWindowCallRatePolicy | UnlimitedCallRatePolicy",
        "CallRatePolicy",
    ),
    (
        "DatetimeBasedCursor | IncrementingCountCursor",
        "IncrementalSync",
    ),
    (
        "InlineSchemaLoader | DynamicSchemaLoader | JsonFileSchemaLoader | CustomSchemaLoader",
        "SchemaLoader",
    ),
    (
        "InlineSchemaLoader | DynamicSchemaLoader | JsonFileSchemaLoader | Vec<SchemaLoader> | \
         CustomSchemaLoader",
        "StreamSchemaLoader",
    ),
    (
        "LegacyToPerPartitionStateMigration | CustomStateMigration",
        "StateMigration",
    ),
    (
        "RequestBodyPlainText | RequestBodyUrlEncodedForm | RequestBodyJsonObject | \
         RequestBodyGraphQL",
        "RequestBody",
    ),
    ("String | QueryProperties", "RequestParameterValue"),
    (
        "IndexMap<String, RequestParameterValue> | String",
        "RequestParameters",
    ),
    ("IndexMap<String, String> | String", "StringOrStringMap"),
    ("Map<String, Value> | String", "StringOrObject"),
    ("MinMaxDatetime | String", "MinMaxDatetimeOrString"),
    ("String | ComplexFieldType", "StringOrComplexFieldType"),
    ("String | Vec<String> | ComplexFieldType", "TargetType"),
    ("Vec<String> | PropertiesFromEndpoint", "PropertyList"),
    ("Vec<StreamConfig> | StreamConfig", "StreamConfigs"),
    (
        "HttpComponentsResolver | ConfigComponentsResolver | ParametrizedComponentsResolver",
        "ComponentsResolver",
    ),
    ("i64 | String", "IntegerOrString"),
    ("f64 | String", "NumberOrString"),
    ("String | Vec<String>", "StringOrList"),
];

/// String enums written inline, keyed by their values joined with `|`.
const ENUM_NAMES: &[(&str, &str)] = &[
    ("GET|POST", "HttpMethod"),
    ("oauth2.0|oauth1.0", "AuthFlowType"),
    (
        "HS256|HS384|HS512|ES256|ES256K|ES384|ES512|RS256|RS384|RS512|PS256|PS384|PS512|EdDSA",
        "JwtAlgorithm",
    ),
    ("skip|emit_parent", "OnNoRecords"),
    (
        "SUCCESS|FAIL|RETRY|IGNORE|RESET_PAGINATION|RATE_LIMITED|REFRESH_TOKEN_THEN_RETRY|\
         REDUCE_PAGE_SIZE|SPLIT_REQUEST_WINDOW",
        "ResponseAction",
    ),
    ("system_error|config_error|transient_error", "FailureType"),
    ("space|comma|plus", "ScopesJoinStrategy"),
    ("characters|property_count", "PropertyLimitType"),
    ("request_parameter|header|body_data|body_json", "InjectInto"),
    ("SPLIT_USING_CURSOR|RESET", "PaginationResetAction"),
    ("NEVER|AFTER_SUCCESSFUL_PAGE", "PageSizeResetPolicy"),
];

/// Objects written inline (with their own properties), keyed by where they appear.
const STRUCT_NAMES: &[(&str, &str)] = &[
    ("DeclarativeStream.file_uploader", "FileUploader"),
    (
        "Spec.config_normalization_rules",
        "ConfigNormalizationRules",
    ),
    ("DatetimeBasedCursor.clamping", "Clamping"),
    ("JwtAuthenticator.jwt_headers", "JwtHeaders"),
    ("JwtAuthenticator.jwt_payload", "JwtPayload"),
    (
        "OAuthAuthenticator.refresh_token_updater",
        "RefreshTokenUpdater",
    ),
    (
        "OAuthConfigSpecification.oauth_connector_input_specification",
        "OAuthConnectorInputSpecification",
    ),
    ("OAuthConnectorInputSpecification.scopes[]", "OAuthScope"),
    (
        "OAuthConnectorInputSpecification.optional_scopes[]",
        "OAuthScope",
    ),
    ("OAuthConnectorInputSpecification.state", "OAuthState"),
];

fn normalized_key(key: &str) -> Vec<String> {
    let mut parts: Vec<String> = key.split('|').map(|p| p.trim().to_owned()).collect();
    parts.sort();
    parts
}

/// The name of a union whose variants have these Rust types, if the table has one.
pub fn union_name(variant_types: &[String]) -> Option<&'static str> {
    let mut wanted = variant_types.to_vec();
    wanted.sort();
    UNION_NAMES
        .iter()
        .find(|(key, _)| normalized_key(key) == wanted)
        .map(|(_, name)| *name)
}

/// The name of an inline string enum with these values, if the table has one.
pub fn enum_name(values: &[String]) -> Option<&'static str> {
    let joined = values.join("|");
    ENUM_NAMES
        .iter()
        .find(|(key, _)| *key == joined)
        .map(|(_, name)| *name)
}

/// The name of an inline object at this location, if the table has one.
pub fn struct_name(location: &str) -> Option<&'static str> {
    STRUCT_NAMES
        .iter()
        .find(|(key, _)| *key == location)
        .map(|(_, name)| *name)
}

/// `Owner` + `field_name` as a type name for an inline type the tables do not name.
/// List items get `Item`, map values `Value`.
pub fn fallback_name(location: &str) -> String {
    let (owner, field) = location.split_once('.').unwrap_or((location, ""));
    let mut name = owner.to_owned();
    let mut rest = field;
    while !rest.is_empty() {
        let end = rest.find(['[', '{']).unwrap_or(rest.len());
        name.push_str(&pascal_case(&rest[..end]));
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("[]") {
            name.push_str("Item");
            rest = r;
        } else if let Some(r) = rest.strip_prefix("{}") {
            name.push_str("Value");
            rest = r;
        }
    }
    name
}

/// `snake_case`, `kebab-case`, `dotted.name` or `UPPER_CASE` to `PascalCase`.
pub fn pascal_case(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            let rest: String = if word.chars().all(|c| !c.is_ascii_lowercase()) {
                chars.as_str().to_ascii_lowercase()
            } else {
                chars.as_str().to_owned()
            };
            first.into_iter().chain(rest.chars()).collect::<String>()
        })
        .collect()
}

/// The Rust variant name of a string enum value: `GET` -> `Get`, `body_json` -> `BodyJson`,
/// `EdDSA` -> `EdDSA`, `oauth2.0` -> `Oauth20`.
pub fn enum_variant_name(value: &str) -> String {
    let name = pascal_case(value);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_names() {
        assert_eq!(enum_variant_name("GET"), "Get");
        assert_eq!(enum_variant_name("body_json"), "BodyJson");
        assert_eq!(enum_variant_name("EdDSA"), "EdDSA");
        assert_eq!(enum_variant_name("ES256K"), "Es256k");
        assert_eq!(enum_variant_name("oauth2.0"), "Oauth20");
        assert_eq!(
            fallback_name("HttpRequester.request_parameters{}"),
            "HttpRequesterRequestParametersValue"
        );
        assert_eq!(fallback_name("Spec.rules[]"), "SpecRulesItem");
    }

    #[test]
    fn finds_union_names_in_any_order() {
        let types = ["CustomRequester".to_owned(), "HttpRequester".to_owned()];
        assert_eq!(union_name(&types), Some("Requester"));
    }
}

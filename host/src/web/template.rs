//! The functions and HTTP routes of an AWS SAM template, for `host serve template.yaml`: the
//! same file that `sam deploy` deploys describes the local API Gateway.
//!
//! Read: each `AWS::Serverless::Function` (with `Globals.Function` under it): `CodeUri`
//! (relative to the template; default `.`), `Handler`, `MemorySize`, `Timeout`,
//! `Environment.Variables` (plain values, and `!Ref` of a template parameter, which is its
//! `Default` as `sam local` uses it; other intrinsic functions cannot be resolved locally and
//! are skipped with a warning), and its events of type `HttpApi` or
//! `Api` (`Path`, `Method`; an `HttpApi` event without a path is the `$default` route).
//! Routes match as API Gateway matches them: the most specific wins (literal segments before
//! `{param}`, `{param}` before a greedy `{proxy+}`), `ANY` after a named method.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_yaml::Value;

/// A function of the template and the routes that reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFunction {
    /// The resource's logical id.
    pub name: String,
    /// Its code folder (`CodeUri`), resolved against the template's folder.
    pub code_dir: PathBuf,
    pub handler: String,
    pub memory_mb: Option<u32>,
    pub timeout_seconds: Option<f64>,
    pub env: Vec<(String, String)>,
    pub routes: Vec<RouteKey>,
}

/// A route: a method (`None`: ANY) and a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    pub method: Option<String>,
    pub path: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Param,
    /// `{name+}`: the rest of the path (at least one segment); `$default` is one too.
    Greedy,
}

impl RouteKey {
    /// Every request: HTTP API's `$default` route.
    pub fn catch_all() -> Self {
        Self {
            method: None,
            path: vec![Segment::Greedy],
        }
    }

    fn parse(method: Option<&str>, path: &str) -> Self {
        let method = method
            .map(str::to_ascii_uppercase)
            .filter(|m| m != "ANY" && m != "*");
        if path == "$default" {
            return Self {
                method,
                path: vec![Segment::Greedy],
            };
        }
        let path = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) if name.ends_with('+') => Segment::Greedy,
                    Some(_) => Segment::Param,
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        Self { method, path }
    }

    /// How specific the route is when it matches `method` and `path`; `None` when it does not.
    /// Higher wins: literal segments count most, then parameters, then a named method.
    pub fn matches(&self, method: &str, path: &str) -> Option<(usize, usize, bool)> {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (mut literals, mut params) = (0, 0);
        for (i, pattern) in self.path.iter().enumerate() {
            match pattern {
                Segment::Greedy => {
                    // `$default` takes everything, `/x/{proxy+}` at least one more segment.
                    let root_default = self.path.len() == 1;
                    if segments.len() <= i && !root_default {
                        return None;
                    }
                    return Some((literals, params, self.method.is_some()));
                }
                Segment::Literal(text) => {
                    if segments.get(i) != Some(&text.as_str()) {
                        return None;
                    }
                    literals += 1;
                }
                Segment::Param => {
                    segments.get(i)?;
                    params += 1;
                }
            }
        }
        (segments.len() == self.path.len()).then_some((literals, params, self.method.is_some()))
    }
}

/// Reads the template's functions that have HTTP events (others cannot be reached by HTTP).
pub fn read(template: &Path) -> Result<Vec<TemplateFunction>> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("failed to read `{}`", template.display()))?;
    let doc: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("`{}` is not a YAML SAM template", template.display()))?;
    let base = template.parent().unwrap_or(Path::new("."));
    let globals = &doc["Globals"]["Function"];
    let Some(resources) = doc["Resources"].as_mapping() else {
        bail!(
            "`{}` has no Resources; is it a SAM template?",
            template.display()
        );
    };
    let mut functions = Vec::new();
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().unwrap_or_default().to_string();
        let props = &resource["Properties"];
        let property = |key: &str| {
            let own = &props[key];
            if own.is_null() { &globals[key] } else { own }
        };
        let Some(handler) = property("Handler").as_str() else {
            bail!("function {name} in `{}` has no Handler", template.display());
        };
        let code_dir = base.join(property("CodeUri").as_str().unwrap_or("."));
        let env = read_env(
            &name,
            &doc["Parameters"],
            &globals["Environment"],
            &props["Environment"],
        );
        let routes = read_routes(&name, &props["Events"])?;
        if routes.is_empty() {
            continue;
        }
        functions.push(TemplateFunction {
            name,
            code_dir,
            handler: handler.to_string(),
            memory_mb: property("MemorySize")
                .as_u64()
                .and_then(|m| u32::try_from(m).ok()),
            timeout_seconds: property("Timeout").as_f64(),
            env,
            routes,
        });
    }
    if functions.is_empty() {
        bail!(
            "`{}` has no AWS::Serverless::Function with an HttpApi or Api event: nothing to serve",
            template.display()
        );
    }
    Ok(functions)
}

/// `Environment.Variables` of the globals, then of the function, with `!Ref PARAMETER` (or
/// `{Ref: PARAMETER}`) as the parameter's default; what cannot be resolved locally (another
/// intrinsic function, a parameter without a default) is left out with a warning.
fn read_env(name: &str, parameters: &Value, globals: &Value, own: &Value) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for variables in [&globals["Variables"], &own["Variables"]] {
        for (key, value) in variables.as_mapping().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default().to_string();
            let referenced = match value {
                Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
                Value::Mapping(map) if map.len() == 1 => map.get("Ref").and_then(Value::as_str),
                _ => None,
            };
            let value = referenced.map_or(value, |parameter| &parameters[parameter]["Default"]);
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    let what = referenced.map_or(
                        "is not a plain value (an intrinsic function?)".to_string(),
                        |p| format!("refers to parameter {p}, which has no Default"),
                    );
                    tracing::warn!(
                        "{name}: environment variable {key} {what} and is left out locally; \
                         pass it with --env {key}=..."
                    );
                    continue;
                }
            };
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
    }
    env
}

/// The routes of the function's `HttpApi` and `Api` events.
fn read_routes(name: &str, events: &Value) -> Result<Vec<RouteKey>> {
    let mut routes = Vec::new();
    for (_, event) in events.as_mapping().into_iter().flatten() {
        let kind = event["Type"].as_str().unwrap_or_default();
        if kind != "HttpApi" && kind != "Api" {
            continue;
        }
        let path = event["Properties"]["Path"].as_str();
        let method = event["Properties"]["Method"].as_str();
        routes.push(match path {
            Some(path) => RouteKey::parse(method, path),
            None if kind == "HttpApi" => RouteKey::catch_all(),
            None => bail!("function {name}: an Api event needs a Path"),
        });
    }
    Ok(routes)
}

/// The index of the function whose route matches best, as API Gateway picks it.
pub fn pick<'a>(
    routes: impl IntoIterator<Item = (usize, &'a RouteKey)>,
    method: &str,
    path: &str,
) -> Option<usize> {
    routes
        .into_iter()
        .filter_map(|(index, route)| route.matches(method, path).map(|score| (score, index)))
        .max_by_key(|(score, _)| *score)
        .map(|(_, index)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: prod}
  Secret: {Type: String, NoEcho: true}
Globals:
  Function:
    Runtime: provided.al2023
    MemorySize: 256
    Timeout: 10
    Environment:
      Variables:
        STAGE: dev
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: app/
      Handler: public/index.php
      Layers: [!Ref PhpLayer]
      Environment:
        Variables:
          TABLE: !Ref Table
          LEVEL: 3
          STAGE_NAME: !Ref Stage
          LONG_FORM: {Ref: Stage}
          SECRET: !Ref Secret
      Events:
        All:
          Type: HttpApi
  Users:
    Type: AWS::Serverless::Function
    Properties:
      Handler: users.wasm
      Timeout: 3
      Events:
        One:
          Type: HttpApi
          Properties: {Path: "/users/{id}", Method: get}
        Rest:
          Type: Api
          Properties: {Path: "/users/{proxy+}", Method: ANY}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: worker
      Events:
        Queue: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
"#;

    #[test]
    fn reads_functions_globals_and_http_routes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("template.yaml");
        std::fs::write(&path, TEMPLATE).unwrap();
        let functions = read(&path).unwrap();
        assert_eq!(functions.len(), 2, "the SQS-only worker has no route");
        let web = &functions[0];
        assert_eq!(web.name, "Web");
        assert_eq!(web.code_dir, dir.path().join("app/"));
        assert_eq!(web.handler, "public/index.php");
        assert_eq!(
            (web.memory_mb, web.timeout_seconds),
            (Some(256), Some(10.0))
        );
        assert_eq!(
            web.env,
            [
                ("STAGE".into(), "dev".into()),
                ("LEVEL".into(), "3".into()),
                ("STAGE_NAME".into(), "prod".into()),
                ("LONG_FORM".into(), "prod".into()),
            ]
        );
        assert_eq!(web.routes, [RouteKey::catch_all()]);
        assert_eq!(functions[1].timeout_seconds, Some(3.0));
    }

    #[test]
    fn the_most_specific_route_wins() {
        let routes = [
            RouteKey::catch_all(),
            RouteKey::parse(Some("get"), "/users/{id}"),
            RouteKey::parse(Some("ANY"), "/users/{proxy+}"),
            RouteKey::parse(None, "/users/me"),
        ];
        let pick = |method: &str, path: &str| pick(routes.iter().enumerate(), method, path);
        assert_eq!(pick("GET", "/"), Some(0));
        assert_eq!(pick("GET", "/blog/1"), Some(0));
        assert_eq!(pick("GET", "/users/7"), Some(1));
        assert_eq!(pick("POST", "/users/7"), Some(2));
        assert_eq!(pick("GET", "/users/7/posts"), Some(2));
        assert_eq!(pick("GET", "/users/me"), Some(3));
        assert_eq!(pick("GET", "/users"), Some(0), "{{proxy+}} needs a segment");
        let only_users = [RouteKey::parse(Some("GET"), "/users/{id}")];
        assert_eq!(
            super::pick(only_users.iter().enumerate(), "GET", "/x"),
            None
        );
    }
}

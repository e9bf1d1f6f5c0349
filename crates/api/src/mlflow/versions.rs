//! `model-versions/*`: create (a Steward registration), get, update, delete (retirement),
//! search, transition-stage (deployment), download URI and tags.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use steward_core::records::ModelVersion;
use steward_core::service::{MlflowModel, MlflowVersionInput};

use super::search::{self, Key, Searchable};
use super::{view, MlAuth, MlResult, MlflowError, Params};
use crate::AppState;

/// The client's default and Steward's limit for one page of versions.
const MAX_VERSIONS_PAGE: usize = 10_000;

pub async fn create(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let name = p.req("name")?;
    let input = MlflowVersionInput {
        source: p.req("source")?,
        run_id: p.text("run_id")?,
        run_link: p.text("run_link")?,
        description: p.text("description")?,
        tags: p.tags()?,
    };
    let (m, v) = s.gov.mlflow_create_version(&c, &name, input).await?;
    Ok(Json(
        json!({"model_version": view::version(&m, &v, s.gov.policy())}),
    ))
}

pub async fn get(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    let (m, v) = s.gov.mlflow_version(&name, version).await?;
    Ok(Json(
        json!({"model_version": view::version(&m, &v, s.gov.policy())}),
    ))
}

pub async fn update(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    let (m, v) = s
        .gov
        .mlflow_update_version(&c, &name, version, &p.text("description")?)
        .await?;
    Ok(Json(
        json!({"model_version": view::version(&m, &v, s.gov.policy())}),
    ))
}

pub async fn delete(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    s.gov.mlflow_delete_version(&c, &name, version).await?;
    Ok(Json(json!({})))
}

pub async fn transition_stage(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    let (m, v) = s
        .gov
        .mlflow_transition_stage(&c, &name, version, &p.req("stage")?)
        .await?;
    Ok(Json(
        json!({"model_version": view::version(&m, &v, s.gov.policy())}),
    ))
}

pub async fn download_uri(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    let (_, v) = s.gov.mlflow_version(&name, version).await?;
    Ok(Json(json!({"artifact_uri": view::download_uri(&v)})))
}

pub async fn set_tag(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    s.gov
        .mlflow_set_version_tag(&c, &name, version, &p.req("key")?, &p.text("value")?)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_tag(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    s.gov
        .mlflow_delete_version_tag(&c, &name, version, &p.req("key")?)
        .await?;
    Ok(Json(json!({})))
}

/// A version with its model, for filters.
struct Found<'a>(&'a MlflowModel, &'a ModelVersion);

impl Searchable for Found<'_> {
    fn field(&self, key: &Key) -> Option<String> {
        let meta = self.1.mlflow.as_ref();
        match key {
            Key::Name => Some(self.1.name.to_string()),
            Key::RunId => Some(meta.map(|m| m.run_id.clone()).unwrap_or_default()),
            Key::SourcePath => Some(view::download_uri(self.1)),
            Key::VersionNumber => Some(self.1.version.to_string()),
            Key::Tag(t) => meta.and_then(|m| {
                m.tags
                    .iter()
                    .find(|(k, _)| k.as_str() == t)
                    .map(|(_, v)| v.clone())
            }),
        }
    }
}

/// `model-versions/search`: with `name = '...'` it reads that model's versions only;
/// otherwise every model's (one request per model: fine for hundreds of models).
pub async fn search(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let clauses = search::parse_filter(&p.text("filter")?)?;
    let order = search::parse_order(
        &p.list("order_by")?,
        &[
            "name",
            "version_number",
            "last_updated_timestamp",
            "creation_timestamp",
        ],
    )?;
    let max = p.number("max_results", MAX_VERSIONS_PAGE)?;
    if max == 0 || max > MAX_VERSIONS_PAGE {
        return Err(MlflowError::invalid(format!(
            "max_results must be between 1 and {MAX_VERSIONS_PAGE}, not {max}"
        )));
    }
    let offset = search::offset(p.opt("page_token")?.as_deref())?;
    let exact = clauses
        .iter()
        .find(|c| c.key == Key::Name && c.op == search::Op::Eq)
        .map(|c| c.values[0].clone());
    let models: Vec<MlflowModel> = match exact {
        Some(name) => match s.gov.mlflow_model(&name).await {
            Ok(m) => vec![m],
            Err(steward_core::GovError::NotFound(_)) => vec![],
            Err(steward_core::GovError::Validation(_)) => vec![],
            Err(e) => return Err(e.into()),
        },
        None => {
            let mut all = Vec::new();
            for m in s.gov.mlflow_models().await? {
                if m.model.is_some() {
                    all.push(s.gov.mlflow_model(m.name.as_ref()).await?);
                }
            }
            all
        }
    };
    let mut found: Vec<Found> = models
        .iter()
        .flat_map(|m| m.versions.iter().map(move |v| Found(m, v)))
        .filter(|f| search::matches(f, &clauses))
        .collect();
    found.sort_by(|a, b| {
        for (field, asc) in &order {
            let o = match field.as_str() {
                "version_number" => a.1.version.cmp(&b.1.version),
                "creation_timestamp" | "last_updated_timestamp" => {
                    a.1.registered_at.cmp(&b.1.registered_at)
                }
                _ => a.1.name.as_ref().cmp(b.1.name.as_ref()),
            };
            let o = if *asc { o } else { o.reverse() };
            if o.is_ne() {
                return o;
            }
        }
        // MLflow's default: newest version first within a model.
        (a.1.name.as_ref(), b.1.version).cmp(&(b.1.name.as_ref(), a.1.version))
    });
    let total = found.len();
    let page: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(max)
        .map(|f| view::version(f.0, f.1, s.gov.policy()))
        .collect();
    let mut out = json!({"model_versions": page});
    if offset + max < total {
        out["next_page_token"] = json!(search::token(offset + max));
    }
    Ok(Json(out))
}

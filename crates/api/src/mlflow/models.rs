//! `registered-models/*`: create, get, search, update, rename, delete, latest versions, tags
//! and aliases.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use steward_core::service::{MlflowModel, MlflowStage};

use super::search::{self, Key, Searchable};
use super::{view, MlAuth, MlResult, MlflowError, Params};
use crate::AppState;

/// MLflow's limit for one page of registered models.
const MAX_MODELS_PAGE: usize = 1000;

pub async fn create(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let name = p.req("name")?;
    let m = s
        .gov
        .mlflow_create_model(&c, &name, &p.text("description")?, &p.tags()?)
        .await
        .map_err(|e| MlflowError::from_gov(e, true))?;
    Ok(Json(
        json!({"registered_model": view::model(&m, s.gov.policy())}),
    ))
}

pub async fn get(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let m = s.gov.mlflow_model(&p.req("name")?).await?;
    Ok(Json(
        json!({"registered_model": view::model(&m, s.gov.policy())}),
    ))
}

pub async fn update(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let name = p.req("name")?;
    let m = s
        .gov
        .mlflow_update_model(&c, &name, &p.text("description")?)
        .await?;
    let m = s.gov.mlflow_model(m.name.as_ref()).await?;
    Ok(Json(
        json!({"registered_model": view::model(&m, s.gov.policy())}),
    ))
}

pub async fn rename(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let m = s
        .gov
        .mlflow_rename_model(&c, &p.req("name")?, &p.req("new_name")?)
        .await
        .map_err(|e| MlflowError::from_gov(e, true))?;
    Ok(Json(
        json!({"registered_model": view::model(&m, s.gov.policy())}),
    ))
}

pub async fn delete(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    s.gov.mlflow_delete_model(&c, &p.req("name")?).await?;
    Ok(Json(json!({})))
}

pub async fn set_tag(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    s.gov
        .mlflow_set_model_tag(&c, &p.req("name")?, &p.req("key")?, &p.text("value")?)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_tag(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    s.gov
        .mlflow_delete_model_tag(&c, &p.req("name")?, &p.req("key")?)
        .await?;
    Ok(Json(json!({})))
}

pub async fn set_alias(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    let (name, version) = p.version()?;
    s.gov
        .mlflow_set_alias(&c, &name, &p.req("alias")?, version)
        .await?;
    Ok(Json(json!({})))
}

pub async fn delete_alias(State(s): State<AppState>, MlAuth(c): MlAuth, p: Params) -> MlResult {
    s.gov
        .mlflow_delete_alias(&c, &p.req("name")?, &p.req("alias")?)
        .await?;
    Ok(Json(json!({})))
}

pub async fn get_by_alias(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let (m, v) = s
        .gov
        .mlflow_version_by_alias(&p.req("name")?, &p.req("alias")?)
        .await?;
    let version = m.version(v)?;
    Ok(Json(
        json!({"model_version": view::version(&m, version, s.gov.policy())}),
    ))
}

/// The newest version in each of `stages` (every stage when none is named).
pub async fn latest_versions(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let m = s.gov.mlflow_model(&p.req("name")?).await?;
    let mut stages = Vec::new();
    for st in p.list("stages")? {
        stages.push(MlflowStage::parse(&st).ok_or_else(|| {
            MlflowError::invalid(format!(
                "invalid stage {st:?}: use None, Staging, Production or Archived"
            ))
        })?);
    }
    if stages.is_empty() {
        stages = vec![
            MlflowStage::None,
            MlflowStage::Staging,
            MlflowStage::Production,
            MlflowStage::Archived,
        ];
    }
    let mut out: Vec<Value> = Vec::new();
    for stage in stages {
        if let Some(v) = m
            .versions
            .iter()
            .filter(|v| m.stage_of(v) == stage)
            .max_by_key(|v| v.version)
        {
            out.push(view::version(&m, v, s.gov.policy()));
        }
    }
    Ok(Json(json!({"model_versions": out})))
}

impl Searchable for MlflowModel {
    fn field(&self, key: &Key) -> Option<String> {
        match key {
            Key::Name => Some(self.name.to_string()),
            Key::Tag(t) => self
                .tags()
                .into_iter()
                .find(|(k, _)| k == t)
                .map(|(_, v)| v.to_owned()),
            _ => None,
        }
    }
}

/// `registered-models/search`: filter by name and tags, order by name or time, paged.
pub async fn search(State(s): State<AppState>, MlAuth(_): MlAuth, p: Params) -> MlResult {
    let clauses = search::parse_filter(&p.text("filter")?)?;
    if let Some(c) = clauses
        .iter()
        .find(|c| !matches!(c.key, Key::Name | Key::Tag(_)))
    {
        return Err(MlflowError::invalid(format!(
            "invalid filter: registered models are searched by name and tags, not {:?}",
            c.key
        )));
    }
    let order = search::parse_order(
        &p.list("order_by")?,
        &["name", "last_updated_timestamp", "creation_timestamp"],
    )?;
    let max = p.number("max_results", 100)?;
    if max == 0 || max > MAX_MODELS_PAGE {
        return Err(MlflowError::invalid(format!(
            "max_results must be between 1 and {MAX_MODELS_PAGE}, not {max}"
        )));
    }
    let offset = search::offset(p.opt("page_token")?.as_deref())?;
    let mut found: Vec<MlflowModel> = s
        .gov
        .mlflow_models()
        .await?
        .into_iter()
        .filter(|m| search::matches(m, &clauses))
        .collect();
    found.sort_by(|a, b| {
        for (field, asc) in &order {
            let o = match field.as_str() {
                "last_updated_timestamp" => a.updated_at().cmp(&b.updated_at()),
                "creation_timestamp" => a.created_at().cmp(&b.created_at()),
                _ => a.name.as_ref().cmp(b.name.as_ref()),
            };
            let o = if *asc { o } else { o.reverse() };
            if o.is_ne() {
                return o;
            }
        }
        a.name.as_ref().cmp(b.name.as_ref())
    });
    let total = found.len();
    let page: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(max)
        .map(|m| view::model(m, s.gov.policy()))
        .collect();
    let mut out = json!({"registered_models": page});
    if offset + max < total {
        out["next_page_token"] = json!(search::token(offset + max));
    }
    Ok(Json(out))
}

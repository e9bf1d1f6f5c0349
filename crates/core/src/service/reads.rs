//! Reads: models, versions with what a reviewer needs, card revisions, production history.
//! Reads need no role beyond authentication and change nothing.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDetail {
    #[serde(flatten)]
    pub model: Model,
    pub versions: Vec<ModelVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: ModelVersion,
    /// Whether this version serves production now.
    pub serving: bool,
    pub promotions: Vec<Promotion>,
    pub reviews: Vec<Review>,
    pub card_revisions: usize,
    pub next_periodic_review: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductionAt {
    pub name: ModelName,
    pub version: Option<VersionNumber>,
    pub since: Option<DateTime<Utc>>,
}

impl Governance {
    pub async fn model_detail(&self, name: &str) -> Result<ModelDetail, GovError> {
        let name = ModelName::parse(name)?;
        let model = self.load_model(&name).await?;
        let versions = self.registry.versions(&name).await?;
        Ok(ModelDetail { model, versions })
    }

    pub async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, GovError> {
        Ok(self
            .registry
            .list_models(filter, cursor, limit.clamp(1, 500))
            .await?)
    }

    pub async fn version_detail(
        &self,
        name: &str,
        version: VersionNumber,
    ) -> Result<VersionDetail, GovError> {
        let name = ModelName::parse(name)?;
        let (v, model) = self.load_version_and_model(&name, version).await?;
        let promotions = self.registry.promotions_of(&name, version).await?;
        let reviews = promotions.iter().flat_map(|p| p.reviews.clone()).collect();
        let card_revisions = v.card_revision as usize;
        let serving = model.production_version == Some(version);
        let next_periodic_review = if serving { self.periodic_due(&v) } else { None };
        Ok(VersionDetail {
            version: v,
            serving,
            promotions,
            reviews,
            card_revisions,
            next_periodic_review,
        })
    }

    pub async fn card_revisions(
        &self,
        name: &str,
        version: VersionNumber,
    ) -> Result<Vec<CardRevision>, GovError> {
        let name = ModelName::parse(name)?;
        self.load_version(&name, version).await?;
        Ok(self.registry.card_revisions(&name, version).await?)
    }

    /// Which version served production at `at`.
    pub async fn production_at(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<ProductionAt, GovError> {
        let name = ModelName::parse(name)?;
        self.load_model(&name).await?;
        let change = self.registry.production_at(&name, at).await?;
        Ok(ProductionAt {
            name,
            version: change.as_ref().and_then(|c| c.version),
            since: change.map(|c| c.at),
        })
    }
}

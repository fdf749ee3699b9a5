use sea_orm::entity::prelude::*;

/// One key that signs access tokens (EdDSA or ES256), shared by every node. Keys follow each other by
/// `generation` (unique, so nodes rotating at once create one key); a key signs from `active_from` until the
/// next generation's `active_from`, and is published from `created_at` until no token it signed can live.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The `kid` of the tokens it signs and of its JWK.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    #[sea_orm(unique)]
    pub generation: i64,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    /// The public JWK, as the JWKS publishes it.
    pub public_jwk: String,
    /// The PKCS #8 private key sealed under `KEY_ENCRYPTION_SECRET`, bound to `kid`.
    pub private_key: String,
    pub created_at: DateTimeUtc,
    pub active_from: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("algorithm", &self.algorithm)
            .field("active_from", &self.active_from)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

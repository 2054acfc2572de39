//! Who is calling, checked on every request in one BatchGetItem: the token is not revoked, the
//! account still exists and was not reset after the token was issued, and (for an
//! establishment-scoped route) the caller's current membership. Reading the membership on every
//! request is what makes a role change or removal take effect on the very next request.

use super::records::{MemberRecord, UserRecord};
use super::{Store, keys};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::ids::EstablishmentId;

/// The caller, as the store knows them right now.
#[derive(Debug)]
pub struct Session {
    /// The caller's account.
    pub user: UserRecord,
    /// The caller's membership in the establishment the route is about, if it asked for one.
    pub member: Option<MemberRecord>,
}

impl Session {
    /// The caller's membership, if their role allows `required`: a non-member gets
    /// `404` (the establishment does not exist for them), a lower role `403`.
    pub fn require(&self, required: Role) -> Result<&MemberRecord> {
        let member = self
            .member
            .as_ref()
            .ok_or(Error::NotFound("establishment"))?;
        if !member.role.allows(required) {
            return Err(Error::Forbidden(format!(
                "this needs the {} role in this establishment; you are {}",
                required.as_str(),
                member.role.as_str()
            )));
        }
        Ok(member)
    }
}

impl Store {
    /// Checks the caller's token against stored state, in one round trip.
    pub async fn session(
        &self,
        principal: &Principal,
        est: Option<&EstablishmentId>,
    ) -> Result<Session> {
        let revoked_key = keys::revoked_token(&principal.jti);
        let user_key = keys::user(&principal.user_id);
        let member_key = est.map(|e| keys::member(e, &principal.user_id));
        let mut wanted = vec![revoked_key.clone(), user_key.clone()];
        wanted.extend(member_key.clone());

        let (mut revoked, mut user, mut member) = (false, None, None);
        for (key, item) in self.batch_get(&wanted).await? {
            if key == revoked_key {
                revoked = true;
            } else if key == user_key {
                user = Some(Self::record::<UserRecord>(item)?);
            } else if Some(&key) == member_key.as_ref() {
                member = Some(Self::record::<MemberRecord>(item)?);
            }
        }
        if revoked {
            return Err(Error::Unauthorized(
                "this token has been revoked; log in again".into(),
            ));
        }
        let user =
            user.ok_or_else(|| Error::Unauthorized("this account no longer exists".into()))?;
        if principal.generation != user.token_generation {
            return Err(Error::Unauthorized(
                "this token was issued before the password was reset; log in again".into(),
            ));
        }
        Ok(Session { user, member })
    }
}

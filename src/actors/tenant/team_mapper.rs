//! The team mapper, a child of each tenant actor: owns the Personio unit → Learn Amp team
//! mapping (teams found by `integrationExternalId`) and every team write — creates,
//! renames, moves under a parent — storing each link right after the call that made it.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::learnamp::LearnAmpClient;
use crate::store::TenantStore;
use crate::sync::apply::apply_teams;

use super::messages::TenantMsg;

/// Its messages are declared beside the sync that sends them, so the sync needs nothing
/// from the actor tree.
pub use crate::sync::TeamMapperMsg;

/// Spawns the team mapper of `tenant` (id `tenant_id`), linked to it.
pub async fn spawn(
    tenant: &ActorRef<TenantMsg>,
    tenant_id: &str,
    learnamp: LearnAmpClient,
    store: TenantStore,
) -> Result<ActorRef<TeamMapperMsg>, ractor::SpawnErr> {
    let args = TeamMapperState {
        tenant_id: tenant_id.to_string(),
        learnamp,
        store,
    };
    let (mapper, _) = Actor::spawn_linked(None, TeamMapper, args, tenant.get_cell()).await?;
    Ok(mapper)
}

/// The team mapper actor.
pub struct TeamMapper;

/// Its state (and arguments).
pub struct TeamMapperState {
    /// The tenant id, for logs.
    pub tenant_id: String,
    /// Learn Amp.
    pub learnamp: LearnAmpClient,
    /// The tenant's store (unit → team links).
    pub store: TenantStore,
}

impl Actor for TeamMapper {
    type Msg = TeamMapperMsg;
    type State = TeamMapperState;
    type Arguments = TeamMapperState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            TeamMapperMsg::Ensure(teams, reply) => {
                let result =
                    apply_teams(&teams, &state.tenant_id, &state.learnamp, &state.store).await;
                let _ = reply.send(result);
            }
        }
        Ok(())
    }
}

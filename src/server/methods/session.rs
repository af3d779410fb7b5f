//! Handshake, liveness and discovery.

use crate::protocol::jsonrpc::RpcError;
use crate::protocol::notifications::{Notification, ProposedEntry, RunProposalNotification};
use crate::protocol::session::{HelloParams, HelloResult, PingResult, SubscribeName};
use crate::protocol::PROTOCOL_VERSION;
use crate::server::admission::resolve_project_root;
use crate::server::router::{describe, params, reply, store_error, Binding, CallCtx, Reply};
use crate::store::{ProjectPendingProposals, UpsertProject};
use serde_json::Value;

pub async fn hello(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: HelloParams = params("rummy/hello", raw)?;
    if let Some(v) = p.client_version.as_deref().filter(|v| !v.is_empty()) {
        let major = v.split('.').next().unwrap_or_default();
        let ours = PROTOCOL_VERSION.split('.').next().unwrap_or_default();
        if major != ours {
            return Err(RpcError::invalid_params(format!(
                "protocol mismatch: server {PROTOCOL_VERSION}, client {v}. Clients must match MAJOR."
            )));
        }
    }
    let run_changed = p
        .subscribe
        .as_deref()
        .unwrap_or_default()
        .contains(&SubscribeName::RunChanged);
    let name = p
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| RpcError::invalid_params("rummy/hello: name is required"))?;
    let root = p
        .project_root
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| RpcError::invalid_params("rummy/hello: projectRoot is required"))?;
    // Identity stays the name and the reply echoes the root as sent (spec
    // 03 §1); what file operations use, here and in runs' scans of the
    // stored root, is the canonical directory.
    let canonical = {
        let given = root.clone();
        let allowed = ctx.app.config.project_roots.clone();
        tokio::task::spawn_blocking(move || resolve_project_root(&given, &allowed))
            .await
            .map_err(|e| RpcError::internal(format!("rummy/hello: {e}")))?
            .map_err(RpcError::invalid_params)?
    };
    let project_id = ctx
        .app
        .store
        .run(UpsertProject {
            name,
            project_root: canonical.clone(),
            config_path: p.config_path,
        })
        .await
        .map_err(store_error)?;
    let result = HelloResult {
        rummy_version: PROTOCOL_VERSION.to_string(),
        project_id,
        project_root: root.clone(),
    };
    // A client joining a project hears every proposal still waiting in it,
    // as it would have when the proposal was made (also after a restart).
    let pending = ctx
        .app
        .store
        .run(ProjectPendingProposals(project_id))
        .await
        .map_err(store_error)?;
    let notices = pending
        .into_iter()
        .map(|(run, row)| {
            Notification::of(&RunProposalNotification {
                run,
                proposed: vec![ProposedEntry {
                    path: row.path,
                    body: row.body,
                    attributes: row.attributes,
                    turn: row.turn,
                }],
            })
            .map_err(|e| RpcError::internal(format!("could not encode run/proposal: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply {
        bind: Some(Binding {
            project_id,
            project_root: canonical,
            run_changed,
        }),
        notices,
        ..reply(&result)?
    })
}

pub async fn ping(_: CallCtx, _: Value) -> Result<Reply, RpcError> {
    reply(&PingResult {})
}

pub async fn discover(_: CallCtx, _: Value) -> Result<Reply, RpcError> {
    reply(describe())
}

//! airlock's long-lived processes, apart from the engine they serve: the
//! ledger server today (one per repository, recording the traces of its
//! commands so that `airlock exec` need not open the ledger itself).

pub mod agent_relay;
pub mod ledger_server;

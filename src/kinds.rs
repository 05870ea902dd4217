//! The one place that maps a task's config to its body: every sync kind
//! is named here and nowhere else above it.

use std::sync::Arc;

use crate::config::{TaskConfig, TaskProperties};
use crate::task::{TaskBodies, TaskBody};

/// The task bodies of every sync kind syncdeck has.
pub struct AllKinds;

impl TaskBodies for AllKinds {
    fn body(&self, task: &TaskConfig) -> Box<dyn TaskBody> {
        match &task.properties {
            TaskProperties::Sync(properties) => Box::new(crate::files::FileSyncBody(Arc::clone(properties))),
            TaskProperties::TableSync(properties) => Box::new(crate::table::TableSyncBody(Arc::clone(properties))),
            TaskProperties::Airbyte(properties) => Box::new(crate::airbyte::AirbyteBody(Arc::clone(properties))),
            TaskProperties::HttpSync(properties) => Box::new(crate::http::HttpSyncBody(Arc::clone(properties))),
        }
    }
}

/// The bodies the binary runs, for [`crate::engine::Engine::new`].
pub fn all() -> Arc<dyn TaskBodies> {
    Arc::new(AllKinds)
}

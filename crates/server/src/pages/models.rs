//! The Models page: which sources the help desk offers as ticketable items.

use askama::Template;
use axum::Form;
use axum::extract::{Extension, State};
use axum::response::Response;

use super::settings_form::FormData;
use super::{Flash, Nav, Page, back, fail, render};
use crate::auth::Principal;
use crate::{Shared, blocking, settings_edit};

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    nav: Nav,
    models: Vec<(String, bool)>,
}

pub async fn models(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    flash: Flash,
) -> Page {
    let config = blocking(&state, |store| Ok(store.load_config()?))
        .await
        .map_err(fail)?;
    Ok(render(&ModelsPage {
        nav: Nav::new(&who, "Models", "models", &flash),
        models: config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.available_for_tickets))
            .collect(),
    }))
}

pub async fn save_models(
    State(state): State<Shared>,
    Extension(who): Extension<Principal>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = FormData(pairs);
    let result = async {
        let changed = settings_edit::edit(&state, &who, |config| {
            for s in &mut config.sources {
                s.available_for_tickets = f.checked(&format!("available.{}", s.name));
            }
            Ok(())
        })
        .await?;
        Ok(if changed.is_empty() {
            "nothing changed".to_owned()
        } else {
            "saved".to_owned()
        })
    }
    .await;
    back("/models", result)
}

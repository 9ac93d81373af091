//! The key table and the mouse: terminal events to [`Action`]s. Nothing here changes the
//! state; [`super::update`] does.

use super::render::{self, Areas};
use super::{Action, App};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

/// The key table. While the filter is being typed, keys edit it.
pub fn action_for_key(app: &App, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.editing_filter {
        return match key.code {
            KeyCode::Enter | KeyCode::Esc => Some(Action::FilterDone),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Enter => Action::ToggleDetail,
        // Esc closes what is open (help, the full detail) before it quits.
        KeyCode::Esc if app.help => Action::ToggleHelp,
        KeyCode::Esc if app.detail_zoom => Action::ToggleDetail,
        KeyCode::Tab => Action::NextView,
        KeyCode::Char('s') => Action::NextSort,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('m') => Action::ToggleNotMtls,
        KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Char('c') => Action::Clear,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        _ => return None,
    })
}

/// The mouse, on a screen of `size`: the wheel moves the selection (or scrolls the full
/// detail), a click on a row of the list selects it, a click on the detail pane opens it full
/// screen (and a click on the full detail closes it).
pub fn action_for_mouse(app: &App, m: MouseEvent, size: Rect) -> Option<Action> {
    match m.kind {
        MouseEventKind::ScrollDown => Some(Action::Down),
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::Down(MouseButton::Left) if !app.help => {
            let at = Position::new(m.column, m.row);
            let Areas { main, detail, .. } = render::areas(app, size);
            if detail.contains(at) {
                return Some(Action::ToggleDetail);
            }
            if !main.contains(at) {
                return None;
            }
            // The list's first two lines are its title rule and the column header.
            let line = usize::from(m.row.checked_sub(main.y + render::LIST_HEADER_LINES)?);
            let index = render::list_offset(app, main) + line;
            (index < app.rows()).then_some(Action::Select(index))
        }
        _ => None,
    }
}

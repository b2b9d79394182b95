//! STUB: filled in by the sys work.
#![allow(missing_docs)]
pub struct ModuleLoad {
    pub name: String,
    pub result: Result<(), String>,
}
pub fn mount_pseudo_filesystems() -> Result<Vec<String>, String> {
    Ok(vec![])
}
pub fn setup_console() {}
pub fn kernel_cmdline() -> Result<String, String> {
    Ok(String::new())
}
pub fn load_modules(_: &std::path::Path, _: &std::path::Path) -> Vec<ModuleLoad> {
    vec![]
}
pub fn reboot() -> String {
    "stub".into()
}
pub fn poweroff() -> String {
    "stub".into()
}

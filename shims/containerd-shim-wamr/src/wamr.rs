//! Owners of WAMR's C handles: each frees what it holds on drop, and keeps alive every
//! buffer WAMR points into for as long as WAMR may read it.

use std::ffi::{CStr, CString, c_char};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use wamrx_sys as sys;

/// The WAMR release linked into this binary, e.g. `2.4.3`.
pub fn version() -> String {
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: writes three integers through valid pointers; needs no initialized runtime.
    unsafe { sys::wasm_runtime_get_version(&mut major, &mut minor, &mut patch) };
    format!("{major}.{minor}.{patch}")
}

/// Proof that WAMR's process-global runtime (allocator, registered WASI host functions) is
/// initialized. It is never torn down: a fork of the process inherits it ready to use.
#[derive(Clone, Copy)]
pub struct Runtime(());

impl Runtime {
    pub fn get() -> Result<Self> {
        static INITIALIZED: OnceLock<bool> = OnceLock::new();
        let initialized = *INITIALIZED.get_or_init(|| {
            // SAFETY: runs once per process, before any other WAMR call but version().
            let ok = unsafe { sys::wasm_runtime_init() };
            if ok {
                // WAMR logs with printf, that is to the create helper's answer pipe and to
                // the container's stdout. Warnings only repeat what we report ourselves
                // (unlinked imports), so only errors are let through.
                // SAFETY: the runtime is initialized.
                unsafe { sys::wasm_runtime_set_log_level(sys::WASM_LOG_LEVEL_ERROR) };
            }
            ok
        });
        if !initialized {
            bail!("WAMR's runtime failed to initialize");
        }
        Ok(Self(()))
    }

    /// Whether WAMR has a host function `module::name` (of whatever type).
    pub fn has_host_function(self, module: &str, name: &str) -> bool {
        let (Ok(module), Ok(name)) = (CString::new(module), CString::new(name)) else {
            return false;
        };
        // SAFETY: two valid C strings, read during the call only.
        unsafe { sys::wasm_runtime_is_import_func_linked(module.as_ptr(), name.as_ptr()) }
    }

    /// Loads (parses and validates) a module; its imports are resolved against WASI.
    pub fn load(self, bytes: &[u8]) -> Result<Module> {
        // WAMR may rewrite the buffer and reads it until unload, so the module owns a copy.
        let mut bytes: Box<[u8]> = bytes.into();
        let size = u32::try_from(bytes.len()).context("the module is larger than 4 GiB")?;
        let mut error = ErrorBuf::new();
        // SAFETY: the buffer is valid for `size` bytes and outlives the module (see Module).
        let raw =
            unsafe { sys::wasm_runtime_load(bytes.as_mut_ptr(), size, error.ptr(), error.len()) };
        let raw = NonNull::new(raw).ok_or_else(|| anyhow!("{}", error.message()))?;
        Ok(Module { raw, _bytes: bytes })
    }
}

/// A loaded module. Not `Send`: it stays in the process (and the fork) that loaded it.
pub struct Module {
    raw: NonNull<sys::WASMModuleCommon>,
    /// Read by WAMR until `wasm_runtime_unload`; dropped after `drop` has unloaded.
    _bytes: Box<[u8]>,
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: loaded by wasm_runtime_load; instances borrow the module, so none is left.
        unsafe { sys::wasm_runtime_unload(self.raw.as_ptr()) }
    }
}

/// What an import or export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Function,
    Table,
    Memory,
    Global,
}

impl Kind {
    fn from_raw(kind: sys::wasm_import_export_kind_t) -> Self {
        match kind {
            sys::WASM_IMPORT_EXPORT_KIND_FUNC => Kind::Function,
            sys::WASM_IMPORT_EXPORT_KIND_TABLE => Kind::Table,
            sys::WASM_IMPORT_EXPORT_KIND_MEMORY => Kind::Memory,
            // WASM_IMPORT_EXPORT_KIND_GLOBAL, the last of WAMR's four kinds.
            _ => Kind::Global,
        }
    }
}

/// An import and whether WAMR resolved it to a host definition.
pub struct Import {
    pub module: String,
    pub name: String,
    pub kind: Kind,
    pub linked: bool,
}

/// An export; for a function, its number of parameters and results.
pub struct Export {
    pub name: String,
    pub kind: Kind,
    pub params_and_results: Option<(u32, u32)>,
}

impl Module {
    pub fn imports(&self) -> Vec<Import> {
        // SAFETY: the module is loaded.
        let count = unsafe { sys::wasm_runtime_get_import_count(self.raw.as_ptr()) };
        (0..count.max(0))
            .map(|index| {
                let mut import = sys::wasm_import_t::default();
                // SAFETY: index < count; WAMR fills `import` with pointers into the module.
                unsafe { sys::wasm_runtime_get_import_type(self.raw.as_ptr(), index, &mut import) };
                // SAFETY: the names point into the module, which `self` keeps loaded.
                let (module, name) =
                    unsafe { (owned_str(import.module_name), owned_str(import.name)) };
                Import {
                    module,
                    name,
                    kind: Kind::from_raw(import.kind),
                    linked: import.linked,
                }
            })
            .collect()
    }

    pub fn exports(&self) -> Vec<Export> {
        // SAFETY: the module is loaded.
        let count = unsafe { sys::wasm_runtime_get_export_count(self.raw.as_ptr()) };
        (0..count.max(0))
            .map(|index| {
                let mut export = sys::wasm_export_t::default();
                // SAFETY: index < count; WAMR fills `export` with pointers into the module.
                unsafe { sys::wasm_runtime_get_export_type(self.raw.as_ptr(), index, &mut export) };
                let kind = Kind::from_raw(export.kind);
                let params_and_results = (kind == Kind::Function).then(|| {
                    // SAFETY: a function export carries its function type.
                    let func_type = unsafe { export.u.func_type };
                    // SAFETY: func_type points into the loaded module.
                    unsafe {
                        (
                            sys::wasm_func_type_get_param_count(func_type),
                            sys::wasm_func_type_get_result_count(func_type),
                        )
                    }
                });
                Export {
                    // SAFETY: the name points into the module, which `self` keeps loaded.
                    name: unsafe { owned_str(export.name) },
                    kind,
                    params_and_results,
                }
            })
            .collect()
    }

    /// Instantiates the module with its own WASI context; each memory capped at
    /// `max_memory_pages` of 64 KiB when given.
    pub fn instantiate(
        &self,
        wasi: &WasiArgs,
        max_memory_pages: Option<u32>,
    ) -> Result<Instance<'_>> {
        let mut args = ptr::null_mut();
        // SAFETY: WAMR allocates the arguments object; InstantiationArgs frees it.
        if !unsafe { sys::wasm_runtime_instantiation_args_create(&mut args) } {
            bail!("WAMR could not allocate instantiation arguments");
        }
        let args = InstantiationArgs(args);
        let (argv, env, dirs) = (&wasi.args, &wasi.env, &wasi.map_dirs);
        let (argc, env_count, dir_count) = (argv.count()?, env.count()?, dirs.count()?);
        let mut error = ErrorBuf::new();
        // SAFETY: `args` keeps the pointers of `wasi` only until it is dropped at the end of
        // this function; instantiation copies the strings into the instance's WASI context
        // (argv, env, preopen names) before it returns. WAMR never writes through argv.
        let raw = unsafe {
            sys::wasm_runtime_instantiation_args_set_wasi_arg(
                args.0,
                argv.pointers.as_ptr() as *mut *mut c_char,
                argc as i32,
            );
            sys::wasm_runtime_instantiation_args_set_wasi_env(
                args.0,
                env.pointers.as_ptr() as *mut *const c_char,
                env_count,
            );
            sys::wasm_runtime_instantiation_args_set_wasi_dir(
                args.0,
                ptr::null_mut(),
                0,
                dirs.pointers.as_ptr() as *mut *const c_char,
                dir_count,
            );
            sys::wasm_runtime_instantiation_args_set_wasi_stdio(args.0, 0, 1, 2);
            if let Some(pages) = max_memory_pages {
                sys::wasm_runtime_instantiation_args_set_max_memory_pages(args.0, pages);
            }
            sys::wasm_runtime_instantiate_ex2(self.raw.as_ptr(), args.0, error.ptr(), error.len())
        };
        let raw = NonNull::new(raw).ok_or_else(|| anyhow!("{}", error.message()))?;
        Ok(Instance {
            raw,
            _module: PhantomData,
        })
    }
}

/// `InstantiationArgs2`, freed on drop.
struct InstantiationArgs(*mut sys::InstantiationArgs2);

impl Drop for InstantiationArgs {
    fn drop(&mut self) {
        // SAFETY: created by wasm_runtime_instantiation_args_create, freed once.
        unsafe { sys::wasm_runtime_instantiation_args_destroy(self.0) }
    }
}

/// A WASI command line, environment and preopened directories, as C strings.
pub struct WasiArgs {
    args: CStrings,
    env: CStrings,
    map_dirs: CStrings,
}

impl WasiArgs {
    /// `env` entries are `NAME=value`; `map_dirs` entries `guest::host`.
    pub fn new(args: Vec<Vec<u8>>, env: Vec<Vec<u8>>, map_dirs: Vec<Vec<u8>>) -> Result<Self> {
        Ok(Self {
            args: CStrings::new(args).context("argument")?,
            env: CStrings::new(env).context("environment variable")?,
            map_dirs: CStrings::new(map_dirs).context("preopened directory")?,
        })
    }
}

/// C strings and the array of pointers to them that WAMR takes.
struct CStrings {
    /// Owns the bytes `pointers` point to.
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl CStrings {
    fn new(items: Vec<Vec<u8>>) -> Result<Self> {
        let strings = items
            .into_iter()
            .map(|item| {
                CString::new(item).map_err(|e| {
                    anyhow!(
                        "{:?} contains a NUL byte",
                        String::from_utf8_lossy(&e.into_vec())
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pointers = strings.iter().map(|s| s.as_ptr()).collect();
        Ok(Self {
            _strings: strings,
            pointers,
        })
    }

    /// How many there are, as WAMR counts (it takes argc as an `int`).
    fn count(&self) -> Result<u32> {
        i32::try_from(self.pointers.len())
            .map(|n| n as u32)
            .map_err(|_| anyhow!("too many strings for WAMR: {}", self.pointers.len()))
    }
}

/// How a call of an entry point ended, short of a trap.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    Returned,
    /// The module called WASI `proc_exit` with this code.
    Exited(u32),
}

/// A module instance; it borrows its module, which must not be unloaded first.
pub struct Instance<'m> {
    raw: NonNull<sys::WASMModuleInstanceCommon>,
    _module: PhantomData<&'m Module>,
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        // SAFETY: instantiated by wasm_runtime_instantiate_ex2; execution environments
        // borrow the instance, so none is left. Closes the WASI preopens, not stdio.
        unsafe { sys::wasm_runtime_deinstantiate(self.raw.as_ptr()) }
    }
}

impl Instance<'_> {
    /// Calls the exported function `name`, which must take and return nothing, on a Wasm
    /// stack of `stack_size` bytes. A trap is an error with WAMR's exception message.
    pub fn call(&self, name: &str, stack_size: u32) -> Result<Ending> {
        let inst = self.raw.as_ptr();
        let c_name = CString::new(name).context("the function name contains a NUL byte")?;
        // SAFETY: the instance is alive; the name is a valid C string.
        let func = unsafe { sys::wasm_runtime_lookup_function(inst, c_name.as_ptr()) };
        if func.is_null() {
            bail!("the module has no exported function `{name}`");
        }
        // The call below passes no argument cells: results would be written past them.
        // SAFETY: func belongs to this instance.
        let counts = unsafe {
            (
                sys::wasm_func_get_param_count(func, inst),
                sys::wasm_func_get_result_count(func, inst),
            )
        };
        if counts != (0, 0) {
            bail!("function `{name}` takes parameters or returns results");
        }
        // SAFETY: the instance is alive; the environment is destroyed by ExecEnv's drop.
        let env = unsafe { sys::wasm_runtime_create_exec_env(inst, stack_size) };
        let env = ExecEnv(
            NonNull::new(env).ok_or_else(|| anyhow!("WAMR could not create a Wasm stack"))?,
        );
        // SAFETY: func takes and returns nothing, so no argument cell is read or written.
        if unsafe { sys::wasm_runtime_call_wasm(env.0.as_ptr(), func, 0, ptr::null_mut()) } {
            return Ok(Ending::Returned);
        }
        // SAFETY: the instance is alive; the message is copied before anything changes it.
        let exception = unsafe { owned_str(sys::wasm_runtime_get_exception(inst)) };
        if exception.ends_with("wasi proc exit") {
            // SAFETY: proc_exit is a WASI import, so the instance has a WASI context.
            return Ok(Ending::Exited(unsafe {
                sys::wasm_runtime_get_wasi_exit_code(inst)
            }));
        }
        match exception.strip_prefix("Exception: ").unwrap_or(&exception) {
            "" => bail!("WAMR failed the call without an exception"),
            message => bail!("{message}"),
        }
    }
}

/// An execution environment (the interpreter's stack), destroyed on drop.
struct ExecEnv(NonNull<sys::WASMExecEnv>);

impl Drop for ExecEnv {
    fn drop(&mut self) {
        // SAFETY: created by wasm_runtime_create_exec_env, destroyed once.
        unsafe { sys::wasm_runtime_destroy_exec_env(self.0.as_ptr()) }
    }
}

/// WAMR's out-parameter for error messages.
struct ErrorBuf([u8; 256]);

impl ErrorBuf {
    fn new() -> Self {
        Self([0; 256])
    }

    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr().cast()
    }

    fn len(&self) -> u32 {
        self.0.len() as u32
    }

    fn message(&self) -> String {
        let text = CStr::from_bytes_until_nul(&self.0)
            .map(|s| s.to_string_lossy().trim_end().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            "WAMR gave no reason".to_string()
        } else {
            text
        }
    }
}

/// Copies a C string WAMR owns (an empty string for NULL).
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid during the call.
unsafe fn owned_str(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_vendored_release() {
        let version = version();
        let parts: Vec<u32> = version.split('.').map(|n| n.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{version}");
        assert!(parts[0] >= 2, "{version}");
    }

    #[test]
    fn instances_close_their_preopens() {
        let runtime = Runtime::get().unwrap();
        let module = runtime
            .load(
                &wat::parse_str(
                    r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
                )
                .unwrap(),
            )
            .unwrap();
        let wasi = WasiArgs::new(
            vec![b"m.wasm".to_vec()],
            vec![b"A=1".to_vec()],
            vec![b"/::/".to_vec(), b".::/tmp".to_vec()],
        )
        .unwrap();
        let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let before = open_fds();
        for _ in 0..3 {
            let instance = module.instantiate(&wasi, None).unwrap();
            assert_eq!(
                instance.call("_start", 64 * 1024).unwrap(),
                Ending::Returned
            );
        }
        assert_eq!(open_fds(), before);
    }
}

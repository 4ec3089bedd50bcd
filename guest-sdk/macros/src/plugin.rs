//! `plugin!`: implements and exports the component's `plugin` interface.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Path, Token, bracketed};

use crate::names;

/// `name = "...", version = "...", tasks = [...], workflows = [...]`.
struct PluginArgs {
    name: LitStr,
    version: LitStr,
    tasks: Vec<Path>,
    workflows: Vec<(Expr, Expr)>,
}

const KEYS: &str = "name, version, tasks, workflows";

impl Parse for PluginArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut name = None;
        let mut version = None;
        let mut tasks: Option<(Vec<Path>, Span)> = None;
        let mut workflows = None;
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.call(Ident::parse_any)?;
            let key_text = key.to_string();
            if seen.contains(&key_text) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{key_text}` is given twice"),
                ));
            }
            input.parse::<Token![=]>()?;
            match key_text.as_str() {
                "name" => {
                    let lit: LitStr = input.parse()?;
                    names::check_name("plugin", &lit.value())
                        .map_err(|msg| syn::Error::new(lit.span(), msg))?;
                    name = Some(lit);
                }
                "version" => {
                    let lit: LitStr = input.parse()?;
                    names::check_version(&lit.value())
                        .map_err(|msg| syn::Error::new(lit.span(), msg))?;
                    version = Some(lit);
                }
                "tasks" => {
                    let content;
                    let brackets = bracketed!(content in input);
                    let list = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
                    tasks = Some((list.into_iter().collect(), brackets.span.join()));
                }
                "workflows" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
                    workflows = Some(
                        list.into_iter()
                            .map(workflow_entry)
                            .collect::<syn::Result<Vec<_>>>()?,
                    );
                }
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown plugin! key `{key_text}`; keys are: {KEYS}"),
                    ));
                }
            }
            seen.push(key_text);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        let missing = |key: &str| {
            syn::Error::new(
                Span::call_site(),
                format!(
                    "plugin! needs `{key}`: plugin!(name = \"...\", version = \"0.1.0\", tasks = [...])"
                ),
            )
        };
        let (tasks, tasks_span) = tasks.ok_or_else(|| missing("tasks"))?;
        if tasks.is_empty() {
            return Err(syn::Error::new(
                tasks_span,
                "a plugin offers at least one task",
            ));
        }
        Ok(Self {
            name: name.ok_or_else(|| missing("name"))?,
            version: version.ok_or_else(|| missing("version"))?,
            tasks,
            workflows: workflows.unwrap_or_default(),
        })
    }
}

/// `("name", include_str!("workflow.toml"))`.
fn workflow_entry(entry: Expr) -> syn::Result<(Expr, Expr)> {
    let error = || {
        syn::Error::new(
            entry.span(),
            "expected a (name, definition) pair, e.g. (\"nightly\", include_str!(\"nightly.toml\"))",
        )
    };
    let Expr::Tuple(tuple) = &entry else {
        return Err(error());
    };
    if tuple.elems.len() != 2 {
        return Err(error());
    }
    Ok((tuple.elems[0].clone(), tuple.elems[1].clone()))
}

/// `greet` -> `__corral_task_greet`, `steps::load` -> `steps::__corral_task_load`.
fn descriptor_path(task: &Path) -> syn::Result<Path> {
    let mut path = task.clone();
    let last = path
        .segments
        .last_mut()
        .ok_or_else(|| syn::Error::new(task.span(), "expected the path of a #[task] function"))?;
    if !last.arguments.is_none() {
        return Err(syn::Error::new(
            last.arguments.span(),
            "expected the path of a #[task] function",
        ));
    }
    last.ident = format_ident!(
        "__corral_task_{}",
        last.ident.unraw(),
        span = last.ident.span()
    );
    Ok(path)
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let PluginArgs {
        name,
        version,
        tasks,
        workflows,
    } = syn::parse2(input)?;
    let descriptors = tasks
        .iter()
        .map(descriptor_path)
        .collect::<syn::Result<Vec<_>>>()?;
    let workflows = workflows
        .iter()
        .map(|(name, definition)| quote!((#name, #definition)));
    let private = quote!(::corral_guest::__private);

    Ok(quote! {
        const _: () = {
            const TASKS: &[#private::TaskDef] = &[#(#descriptors),*];
            const _: () = #private::check_unique_task_names(TASKS);
            static PLUGIN: #private::PluginDef = #private::PluginDef {
                name: #name,
                version: #version,
                tasks: TASKS,
                workflows: &[#(#workflows),*],
            };

            struct CorralPlugin;

            impl #private::Guest for CorralPlugin {
                fn describe() -> #private::PluginInfo {
                    #private::describe(&PLUGIN)
                }

                fn run(
                    task: ::std::string::String,
                    input: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, #private::WitTaskError> {
                    #private::run(&PLUGIN, task, input)
                }
            }

            #private::bindings::export!(CorralPlugin with_types_in #private::bindings);
        };
    })
}

//! `#[task]`: keeps the function and emits its hidden descriptor.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, GenericParam, ItemFn, Lit, Meta, ReturnType, Token, Type};

use crate::{duration, names};

/// The options of `#[task(...)]`.
#[derive(Default)]
struct TaskArgs {
    name: Option<(String, Span)>,
    description: Option<String>,
    timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
}

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let function: ItemFn = syn::parse2(item).map_err(|err| {
        syn::Error::new(
            err.span(),
            "#[task] goes on a function `fn name(ctx: &mut Context) -> Result<(), TaskError>`",
        )
    })?;
    let ctx_ty = check_signature(&function)?;

    let fn_ident = &function.sig.ident;
    let (name, name_span, hint) = match args.name {
        Some((name, span)) => (name, span, ""),
        None => (
            fn_ident.unraw().to_string(),
            fn_ident.span(),
            "; or set one with #[task(name = \"...\")]",
        ),
    };
    names::check_name("task", &name)
        .map_err(|msg| syn::Error::new(name_span, format!("{msg}{hint}")))?;
    let description = args.description.unwrap_or_else(|| doc_summary(&function));
    let timeout = option(args.timeout_ms.map(|ms| quote!(#ms)));
    let max_attempts = option(args.max_attempts.map(|n| quote!(#n)));

    let vis = &function.vis;
    let descriptor = format_ident!("__corral_task_{}", fn_ident.unraw());
    let ret_span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => fn_ident.span(),
    };
    // The shim's argument and return value carry the spans of the user's
    // argument type and return type, so a mismatch is reported there.
    let ctx_arg = quote_spanned!(ctx_ty.span()=> ctx);
    let mut callee = fn_ident.clone();
    callee.set_span(ret_span);
    let call = quote_spanned!(ret_span=> #callee(#ctx_arg));

    Ok(quote! {
        #function

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis const #descriptor: ::corral_guest::__private::TaskDef = {
            fn run(
                ctx: &mut ::corral_guest::Context,
            ) -> ::core::result::Result<(), ::corral_guest::TaskError> {
                #call
            }
            ::corral_guest::__private::TaskDef {
                name: #name,
                description: #description,
                default_timeout_ms: #timeout,
                max_attempts: #max_attempts,
                run,
            }
        };
    })
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

fn parse_args(args: TokenStream) -> syn::Result<TaskArgs> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut parsed = TaskArgs::default();
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let Meta::NameValue(pair) = meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `key = value`; options are: name, description, timeout, max_attempts",
            ));
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if seen.contains(&key) {
            return Err(syn::Error::new(
                pair.path.span(),
                format!("`{key}` is given twice"),
            ));
        }
        let value = &pair.value;
        match key.as_str() {
            "name" => {
                let text = lit_str(value, "the task's name, e.g. name = \"extract\"")?;
                parsed.name = Some((text, value.span()));
            }
            "description" => {
                parsed.description = Some(lit_str(
                    value,
                    "one line, e.g. description = \"Greets someone\"",
                )?);
            }
            "timeout" => {
                let text = lit_str(value, "a duration, e.g. timeout = \"30s\"")?;
                let ms = duration::parse_millis(&text)
                    .map_err(|msg| syn::Error::new(value.span(), msg))?;
                parsed.timeout_ms = Some(ms);
            }
            "max_attempts" => {
                let Expr::Lit(ExprLit {
                    lit: Lit::Int(int), ..
                }) = value
                else {
                    return Err(syn::Error::new(
                        value.span(),
                        "expected a positive integer, e.g. max_attempts = 3",
                    ));
                };
                let n: u32 = int.base10_parse()?;
                if n == 0 {
                    return Err(syn::Error::new(
                        int.span(),
                        "max_attempts must be at least 1 (1 = no retry)",
                    ));
                }
                parsed.max_attempts = Some(n);
            }
            _ => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    format!(
                        "unknown #[task] option `{}`; options are: name, description, timeout, max_attempts",
                        path_text(&pair.path)
                    ),
                ));
            }
        }
        seen.push(key);
    }
    Ok(parsed)
}

fn lit_str(value: &Expr, expected: &str) -> syn::Result<String> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text.value()),
        _ => Err(syn::Error::new(
            value.span(),
            format!("expected a string literal: {expected}"),
        )),
    }
}

/// Checks `fn name(ctx: &mut Context) -> Result<(), TaskError>` as far as
/// syntax goes, returning the argument's type (the compiler checks the rest).
fn check_signature(function: &ItemFn) -> syn::Result<&Type> {
    let sig = &function.sig;
    let expected = "a task is `fn name(ctx: &mut Context) -> Result<(), TaskError>`";
    let fail = |span: Span, what: &str| Err(syn::Error::new(span, format!("{what}; {expected}")));
    if let Some(token) = &sig.asyncness {
        return fail(token.span(), "a task cannot be `async`");
    }
    if let Some(token) = &sig.unsafety {
        return fail(token.span(), "a task cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        return fail(abi.span(), "a task cannot declare an ABI");
    }
    if let Some(param) = sig
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, GenericParam::Lifetime(_)))
    {
        return fail(param.span(), "a task cannot be generic");
    }
    if let Some(variadic) = &sig.variadic {
        return fail(variadic.span(), "a task cannot be variadic");
    }
    if sig.inputs.len() != 1 {
        let span = if sig.inputs.is_empty() {
            sig.paren_token.span.join()
        } else {
            sig.inputs[1].span()
        };
        return fail(span, "a task takes exactly one argument");
    }
    let ty = match &sig.inputs[0] {
        FnArg::Receiver(receiver) => {
            return fail(receiver.span(), "a task is a free function, not a method");
        }
        FnArg::Typed(arg) => &*arg.ty,
    };
    match ty {
        Type::Reference(reference) if reference.mutability.is_some() => {}
        _ => return fail(ty.span(), "a task's argument is `&mut Context`"),
    }
    if let ReturnType::Default = sig.output {
        return fail(
            sig.paren_token.span.close(),
            "a task returns `Result<(), TaskError>`",
        );
    }
    Ok(ty)
}

/// The first paragraph of the function's doc comment, on one line.
fn doc_summary(function: &ItemFn) -> String {
    let mut lines = Vec::new();
    for attr in &function.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        let Meta::NameValue(pair) = &attr.meta else {
            continue;
        };
        let Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) = &pair.value
        else {
            continue;
        };
        for line in text.value().lines() {
            lines.push(line.trim().to_owned());
        }
    }
    lines
        .iter()
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

fn path_text(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

//! Benchmark-only exports, compiled with the cargo feature `bench` into a separate package
//! variant (`make bench-pkg` → `target/bench-pkg/`); the shipped `pkg/` never contains them.
//!
//! `ConditionBench` holds conditions and attribute documents inside wasm and evaluates every
//! condition against every document there: the "held in wasm" figure of `make bench`, next to
//! the drop-in `evalCondition` that converts its arguments on every call.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::condition::Groups;
use crate::core::value::Value;
use crate::web::convert::{error_to_js, from_js};
use crate::web::host::BrowserHost;
use wasm_bindgen::prelude::*;

/// Which evaluator this build measures (reported by `make bench`).
const EVALUATOR: &str = "core::condition::eval_condition";

/// The same evaluation as the exported `evalCondition`, minus the JS→wasm conversion.
fn eval(attributes: &Value, condition: &Value, groups: &Groups) -> bool {
    let cx = crate::core::condition::Ctx { groups: Some(groups), host: &BrowserHost };
    crate::core::condition::eval_condition(attributes, condition, &cx)
}

/// Conditions and attribute documents held in wasm.
#[wasm_bindgen]
pub struct ConditionBench {
    conditions: Vec<Value>,
    groups: Groups,
    documents: Vec<Value>,
}

#[wasm_bindgen]
impl ConditionBench {
    /// Takes an array of conditions and the saved groups (`{id: [values]}` or undefined).
    #[wasm_bindgen(constructor)]
    pub fn new(conditions: JsValue, saved_groups: JsValue) -> Result<ConditionBench, JsValue> {
        let conditions = match from_js(&conditions).map_err(|e| error_to_js(&e))? {
            Value::Arr(a) => a,
            _ => Vec::new(),
        };
        let groups = if saved_groups.is_undefined() { Value::Null } else { from_js(&saved_groups).map_err(|e| error_to_js(&e))? };
        let groups = Groups::new(groups.as_obj().cloned().unwrap_or_default());
        Ok(ConditionBench { conditions, groups, documents: Vec::new() })
    }

    /// Replaces the attribute documents (an array of objects); returns how many were loaded.
    pub fn load(&mut self, documents: JsValue) -> Result<u32, JsValue> {
        self.documents = match from_js(&documents).map_err(|e| error_to_js(&e))? {
            Value::Arr(a) => a,
            _ => Vec::new(),
        };
        Ok(self.documents.len() as u32)
    }

    /// Evaluates every condition against every document; returns the matches per condition.
    pub fn run(&self) -> Vec<u32> {
        self.conditions
            .iter()
            .map(|c| self.documents.iter().filter(|d| eval(d, c, &self.groups)).count() as u32)
            .collect()
    }

    /// Evaluates condition `index` against every document; returns the matches.
    #[wasm_bindgen(js_name = runOne)]
    pub fn run_one(&self, index: u32) -> u32 {
        match self.conditions.get(index as usize) {
            Some(c) => self.documents.iter().filter(|d| eval(d, c, &self.groups)).count() as u32,
            None => 0,
        }
    }

    /// The evaluator this build measures.
    pub fn evaluator() -> String {
        EVALUATOR.into()
    }

    /// The wasm linear memory size, in bytes.
    #[wasm_bindgen(js_name = memoryBytes)]
    pub fn memory_bytes() -> f64 {
        (::core::arch::wasm32::memory_size(0) * 65536) as f64
    }
}

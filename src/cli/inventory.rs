//! `mtlscope inventory`: resolve an inventory (from a cluster, or from files) and write it, so a
//! capture and its inventory can be archived together.

use super::{EXIT_OK, EXIT_UNREADABLE};
use crate::inventory::live::{fetch_blocking, KubeArgs};
use crate::inventory::{Inventory, Sources};
use clap::Args;
use std::io::{self, Write};
use std::path::PathBuf;

pub const INVENTORY_EXAMPLES: &str = "\
Examples:
  mtlscope inventory -A -o cluster.json                     (every namespace, current context)
  mtlscope inventory --context prod -n shop > shop.json
  mtlscope inventory --kubeconfig ~/.kube/lab.yaml --request-timeout 10s -A -o lab.json
  mtlscope inventory --from pods.yaml --from nodes.json -o cluster.json   (offline: merge files)
  mtlscope inventory -A --resolved | jq '.pods[] | select(.mesh.mesh == \"none\")'
  mtlscope analyze capture.pcap --inventory cluster.json    (use the archived inventory)

The default output is a kubectl-shaped `v1 List` of the objects (what `kubectl get
pods,services,endpointslices,nodes,namespaces -o json` writes); `analyze --inventory` and kubectl
read it back. --resolved writes what mtlscope made of them instead (schema mtlscope-inventory/v1).

RBAC: list on pods, services, endpointslices.discovery.k8s.io (in the namespaces listed), and on
nodes and namespaces (optional: without them, a warning).

Exit codes:
  0  the inventory was written (warnings, e.g. nodes not listable, go to stderr)
  2  the cluster could not be listed (unreachable, credentials rejected, RBAC, timeout, bad
     kubeconfig or context), a --from file could not be read, the output could not be written,
     or bad usage";

#[derive(Args, Debug)]
pub struct InventoryArgs {
    #[command(flatten)]
    pub kube: KubeArgs,

    /// Read Kubernetes objects from FILE instead of the cluster (`kubectl get ... -o json` or
    /// `-o yaml` output; repeatable).
    #[arg(long = "from", value_name = "FILE",
          conflicts_with_all = ["kubeconfig", "context", "namespace", "all_namespaces"])]
    pub from: Vec<PathBuf>,

    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Write the resolved view (each pod's workload, mesh and addresses; schema
    /// mtlscope-inventory/v1) instead of the objects. For reading: `analyze --inventory` wants
    /// the objects.
    #[arg(long)]
    pub resolved: bool,
}

pub fn run(args: &InventoryArgs) -> i32 {
    let sources = match resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mtlscope: error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    for w in &sources.warnings {
        eprintln!("mtlscope: warning: {w}");
    }
    let write = |out: &mut dyn Write| -> io::Result<()> {
        if args.resolved {
            Inventory::build(&sources).write_json(out)?;
        } else {
            sources.write_list(out)?;
        }
        out.flush()
    };
    let (result, target) = match &args.output {
        Some(path) => {
            let result =
                std::fs::File::create(path).and_then(|f| write(&mut io::BufWriter::new(f)));
            (result, path.display().to_string())
        }
        None => (write(&mut io::BufWriter::new(io::stdout().lock())), "stdout".to_string()),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe && args.output.is_none() => EXIT_OK,
        Err(e) => {
            eprintln!("mtlscope: error: cannot write the inventory to {target}: {e}");
            EXIT_UNREADABLE
        }
    }
}

/// The objects: from the `--from` files, else from the cluster.
fn resolve(args: &InventoryArgs) -> Result<Sources, String> {
    if args.from.is_empty() {
        return fetch_blocking(&args.kube.options()).map_err(|e| e.to_string());
    }
    let mut sources = Sources::new();
    for path in &args.from {
        sources.load_file(path).map_err(|e| e.to_string())?;
    }
    Ok(sources)
}

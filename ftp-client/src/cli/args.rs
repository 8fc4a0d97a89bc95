//! The arguments of the remote commands, as clap parses them for the
//! command line and the shell alike.

use clap::{Args, Subcommand};

/// The commands that act on the server.
#[derive(Debug, Clone, Subcommand)]
pub enum RemoteCmd {
    /// List remote directories (the working directory by default)
    Ls {
        /// Long listing: type and permissions, size, modification time.
        #[arg(short)]
        long: bool,
        /// Show names that start with '.'.
        #[arg(short)]
        all: bool,
        #[arg(value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Show the type, size, permissions and time of remote paths
    Stat {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Upload files or directories
    ///
    /// `put LOCAL [REMOTE]`, `put LOCAL... REMOTE_DIR`, `put -r DIR [REMOTE]`.
    /// A directory REMOTE (existing, or written with a trailing '/')
    /// receives the files under their own names. An interrupted upload of the
    /// same file (1 MiB or more) is continued.
    Put(PutArgs),
    /// Download files or directories
    ///
    /// `get REMOTE [LOCAL]`, `get REMOTE... LOCAL_DIR`, `get -r DIR [LOCAL]`.
    /// A download lands in LOCAL.part and is renamed only once its digest
    /// checked out. A LOCAL ending in '/' must be an existing directory
    /// (with -r, it is created).
    Get(GetArgs),
    /// Create remote directories
    Mkdir {
        /// Create missing parents; an existing directory is fine.
        #[arg(short, long)]
        parents: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Delete remote files
    ///
    /// A symlink is deleted itself, never what it points to.
    Rm {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Delete empty remote directories
    Rmdir {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Rename or move a remote file or directory
    ///
    /// `mv FROM TO`, or `mv FROM DIR` into a directory. The rename is atomic;
    /// an existing file at TO is replaced.
    #[command(visible_alias = "rename")]
    Mv { from: String, to: String },
}

impl RemoteCmd {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            RemoteCmd::Ls { .. } => "ls",
            RemoteCmd::Stat { .. } => "stat",
            RemoteCmd::Put(_) => "put",
            RemoteCmd::Get(_) => "get",
            RemoteCmd::Mkdir { .. } => "mkdir",
            RemoteCmd::Rm { .. } => "rm",
            RemoteCmd::Rmdir { .. } => "rmdir",
            RemoteCmd::Mv { .. } => "mv",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// Upload directories with everything in them.
    #[arg(short, long)]
    pub recursive: bool,
    #[arg(required = true, value_name = "LOCAL... [REMOTE]")]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Download directories with everything in them.
    #[arg(short, long)]
    pub recursive: bool,
    /// Continue downloads that left LOCAL.part behind.
    #[arg(long)]
    pub resume: bool,
    /// Do not wait for the disk before renaming a download into place.
    #[arg(long)]
    pub no_fsync: bool,
    #[arg(required = true, value_name = "REMOTE... [LOCAL]")]
    pub args: Vec<String>,
}

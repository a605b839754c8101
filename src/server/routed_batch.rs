//! Pipelined keyed commands in a partitioned cluster run together: the
//! connection gathers consecutive routed commands that touch different
//! keys (or only read the same ones) and runs them at once, each into its
//! own reply buffer, appended in request order. Forwarded requests of one
//! pipeline then share the peers' batches instead of waiting one round
//! trip each, and the replies read exactly as if they had run one by one:
//! a command touching a key an earlier one in the batch writes starts a new
//! batch, and any other command (or a parse error) runs the batch first.

use futures_util::future::join_all;

use super::commands::{routed, strings};
use super::context::ServerContext;
use super::session::Session;
use crate::protocol::{Command, ReplyBuf};

/// Routed commands run together at most.
const MAX_BATCH: usize = 64;

/// Routed commands waiting to run, in request order.
#[derive(Default)]
pub struct RoutedBatch<'a> {
    commands: Vec<Command<'a>>,
    /// Every key the commands touch, and whether it is written.
    keys: Vec<(&'a [u8], bool)>,
}

impl<'a> RoutedBatch<'a> {
    /// Takes a keyed command: a GET this node answers alone runs now (when
    /// no batch waits before it); anything else joins the batch, which runs
    /// first when the command conflicts with it.
    pub async fn gather(
        &mut self,
        ctx: &ServerContext,
        session: &Session,
        cmd: Command<'a>,
        out: &mut ReplyBuf,
    ) {
        super::dispatch::count(ctx, &cmd);
        if self.commands.is_empty() {
            if let (Command::Get(key), Some(cluster)) = (&cmd, &ctx.cluster) {
                if cluster.coordinator.reads_locally(key, session.consistency) {
                    strings::get(ctx, out, key);
                    return;
                }
            }
        }
        if !self.admits(&cmd) {
            self.run(ctx, session, out).await;
        }
        self.push(cmd);
    }

    /// Whether `cmd` may run together with the waiting commands: no key it
    /// touches is written by one of them, and none it writes is touched.
    pub fn admits(&self, cmd: &Command<'a>) -> bool {
        if self.commands.len() >= MAX_BATCH {
            return false;
        }
        let mut fits = true;
        touched(cmd, |key, writes| {
            fits &= !self.keys.iter().any(|(k, w)| *k == key && (*w || writes));
        });
        fits && !matches!(cmd, Command::Flush)
            && !self.commands.iter().any(|c| matches!(c, Command::Flush))
    }

    /// Adds `cmd` (after [`RoutedBatch::admits`]).
    pub fn push(&mut self, cmd: Command<'a>) {
        touched(&cmd, |key, writes| self.keys.push((key, writes)));
        self.commands.push(cmd);
    }

    /// Runs the waiting commands at once and appends their replies in
    /// order.
    pub async fn run(&mut self, ctx: &ServerContext, session: &Session, out: &mut ReplyBuf) {
        if self.commands.is_empty() {
            return;
        }
        let Some(cluster) = &ctx.cluster else {
            self.commands.clear();
            self.keys.clear();
            return;
        };
        let level = session.consistency;
        self.keys.clear();
        if self.commands.len() == 1 {
            if let Some(cmd) = self.commands.pop() {
                routed::run(ctx, cluster, level, out, cmd).await;
            }
            return;
        }
        let runs = self.commands.drain(..).map(|cmd| {
            let mut reply = out.sibling();
            async move {
                routed::run(ctx, cluster, level, &mut reply, cmd).await;
                reply
            }
        });
        for reply in join_all(runs).await {
            out.extend_from(&reply);
        }
    }
}

/// Calls `f` with every key `cmd` touches and whether it writes it.
fn touched<'a>(cmd: &Command<'a>, mut f: impl FnMut(&'a [u8], bool)) {
    match cmd {
        Command::Get(k) => f(k, false),
        Command::MGet(keys) | Command::Exists(keys) => keys.iter().for_each(|k| f(k, false)),
        Command::Set(k, _)
        | Command::Increment(k, _)
        | Command::Append(k, _)
        | Command::Prepend(k, _) => f(k, true),
        Command::Delete(keys) => keys.iter().for_each(|k| f(k, true)),
        Command::MSet(pairs) => pairs.iter().for_each(|(k, _)| f(k, true)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_on_a_written_key_wait_for_the_next_batch() {
        let mut batch = RoutedBatch::default();
        batch.push(Command::Set(b"a", b"1"));
        assert!(batch.admits(&Command::Get(b"b")));
        assert!(!batch.admits(&Command::Get(b"a")), "read after write");
        assert!(!batch.admits(&Command::Delete(vec![b"c", b"a"])));
        batch.push(Command::Get(b"b"));
        assert!(batch.admits(&Command::Get(b"b")), "reads share a key");
        assert!(!batch.admits(&Command::Set(b"b", b"2")), "write after read");
        assert!(!batch.admits(&Command::Flush));
    }
}

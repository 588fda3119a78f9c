// Whether a process id is still running: lock files and temporary files carry the pid of the
// process that wrote them, and only a dead owner's files may be taken over or removed.

/** True while process pid exists (EPERM: it exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A "no" at the prompt: nothing was changed, which is not an error. The command ends with a plain
 * line and `exitCode` (0 for apply, rollback and purge; drift keeps its 2 for drift found).
 */
export class Declined extends Error {
  constructor(readonly exitCode = 0) {
    super('not confirmed: nothing was changed');
    this.name = 'Declined';
  }
}

import { describe, expect, it } from 'vitest';
import { errorChain } from '../../src/lib/errors.js';

describe('errorChain', () => {
  it('follows causes (abstract-level keeps LevelDB\'s reason as the cause of "Database failed to open")', () => {
    const leveldb = new Error('IO error: /spool/MANIFEST-000001: No space left on device');
    expect(errorChain(new Error('Database failed to open', { cause: leveldb }))).toBe('Database failed to open: IO error: /spool/MANIFEST-000001: No space left on device');
  });

  it('leaves out a cause that repeats what is said, stops four deep, and takes what is not an Error', () => {
    const inner = new Error('EIO');
    expect(errorChain(new Error('write failed: EIO', { cause: inner }))).toBe('write failed: EIO');
    let e: Error = new Error('e0');
    for (let i = 1; i < 8; i++) e = new Error(`e${i}`, { cause: e });
    expect(errorChain(e)).toBe('e7: e6: e5: e4');
    expect(errorChain('plain')).toBe('plain');
    expect(errorChain(new Error('top', { cause: 'a string cause' }))).toBe('top: a string cause');
  });
});

import type { Document } from 'yaml';
import { Y, YAML_OPTIONS } from './yaml-lib.js';
import { LineIndex, documentSlices, lexScan, type Slice } from './yaml-scan.js';

/**
 * The most work the `yaml` package may do for one file, in lexer tokens. It costs about 3 µs and
 * 0.4 KB per token, so a hostile 4 MiB file of a million tokens would take seconds and a
 * gigabyte; 150,000 tokens (about half a second) is some 500 KB of ordinary fleet YAML, or a
 * thousand small documents with a problem each (MAX_FILE_PROBLEMS).
 */
export const TREE_TOKEN_BUDGET = 150_000;
/** What one parse costs beyond its tokens (a lexer, parser, composer and schema: about 200 µs). */
const PARSE_COST = 60;
/** Flow collections nested deeper than this are refused (a fleet needs five or six levels). */
export const MAX_FLOW_DEPTH = 64;

export interface DocTree {
  doc: Document;
  /** Where the text the tree was parsed from starts in the file: node ranges are relative to it. */
  offset: number;
}

/**
 * A file's YAML syntax trees, with positions, for pointing at fields. A file read by the fast
 * path gets a tree per document, built only for documents with a problem to point at; a file
 * read by the slow path has its trees already. The work is bounded: once a file has spent its
 * token budget, further documents are located by where they start.
 */
export class FileTree {
  private index?: LineIndex;
  private slices?: Slice[] | null;
  private readonly trees = new Map<number, DocTree | null>();
  private budget = TREE_TOKEN_BUDGET;

  /**
   * @param count how many non-empty documents the file has
   * @param whole the slow path's trees of those documents, parsed from the whole text
   */
  constructor(readonly text: string, private readonly count: number, private whole?: Document[]) {}

  get lines(): LineIndex {
    return (this.index ??= new LineIndex(this.text));
  }

  /** The tree of the k-th non-empty document, or undefined when it is not affordable. */
  tree(k: number): DocTree | undefined {
    if (this.whole) {
      const doc = this.whole[k];
      return doc ? { doc, offset: 0 } : undefined;
    }
    if (!this.trees.has(k)) this.trees.set(k, this.build(k));
    return this.trees.get(k) ?? undefined;
  }

  /** Where the k-th document starts, known without its tree. */
  start(k: number): number {
    if (this.whole) return this.whole[k]?.contents?.range?.[0] ?? 0;
    return this.sliceList()?.[k]?.start ?? 0;
  }

  /** The documents' ranges, or null if they do not match the documents read (then: no per-document trees). */
  private sliceList(): Slice[] | null {
    if (this.slices === undefined) {
      const s = documentSlices(this.text);
      this.slices = s.length === this.count ? s : null;
    }
    return this.slices;
  }

  private build(k: number): DocTree | null {
    const slices = this.sliceList();
    if (!slices) return this.buildWhole() ? this.tree(k) ?? null : null;
    const { start, end } = slices[k];
    const text = this.text.slice(start, end);
    if (!this.afford(text)) return null;
    const doc = Y().parseAllDocuments(text, YAML_OPTIONS).find((d) => d.contents !== null);
    return doc ? { doc, offset: start } : null;
  }

  private buildWhole(): boolean {
    if (!this.afford(this.text)) return false;
    const all = Y().parseAllDocuments(this.text, YAML_OPTIONS);
    this.whole = (Array.isArray(all) ? all : []).filter((d) => d.contents !== null);
    return true;
  }

  /** Spends the budget on a text's tokens; false when it does not cover them (or the text nests too deep). */
  private afford(text: string): boolean {
    if (this.budget <= PARSE_COST) return false;
    const scan = lexScan(text, this.budget - PARSE_COST, MAX_FLOW_DEPTH);
    this.budget -= scan.tokens + PARSE_COST;
    return !scan.tooMany && scan.tooDeepAt === undefined;
  }
}

import { badRequest } from '../../store/errors';

/**
 * JSON nesting a request body may have. Real resources stay far below it (an extension in an
 * extension in a Questionnaire item is a dozen levels); the schema validator and the store's
 * tree walkers recurse, and a few thousand levels overflow the stack.
 */
export const MAX_JSON_DEPTH = 100;

/** Refuses a body nested deeper than MAX_JSON_DEPTH, naming the top-level element it happens under. Iterative: it must not overflow itself. */
export function checkDepth(body: unknown, type: string): void {
  const stack: [unknown, number, string][] = [[body, 0, type]];
  while (stack.length > 0) {
    const [node, depth, element] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) throw badRequest(`${element} is nested more than ${MAX_JSON_DEPTH} levels deep`, [element]);
    for (const [key, child] of Object.entries(node)) stack.push([child, depth + 1, depth === 0 ? `${type}.${key}` : element]);
  }
}

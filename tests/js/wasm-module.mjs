// Just enough of the WebAssembly binary format to see what each exported
// function does first: the function index space, the exports, the function
// bodies and the `name` section's function names.

const utf8 = new TextDecoder();

/** Reads unsigned LEB128 numbers and byte runs from `bytes`. */
class Reader {
  constructor(bytes, at = 0, end = bytes.length) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
  }

  u32() {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      if (this.at >= this.end || shift > 28) throw new Error(`bad LEB128 at byte ${this.at}`);
      const b = this.bytes[this.at++];
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
    }
  }

  name() {
    const n = this.u32();
    const s = utf8.decode(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }

  skipImportDesc(kind) {
    if (kind === 0x00) this.u32(); // function: type index
    else if (kind === 0x01) {
      this.at++; // table: element type
      this.limits();
    } else if (kind === 0x02) this.limits(); // memory
    else if (kind === 0x03) this.at += 2; // global: value type, mutability
    else if (kind === 0x04) {
      this.at++; // tag: attribute
      this.u32();
    } else throw new Error(`unknown import kind ${kind}`);
  }

  limits() {
    const flags = this.bytes[this.at++];
    this.u32();
    if (flags & 1) this.u32();
  }
}

/**
 * The module's function names (from its `name` section), exported functions
 * and, for every function defined in it, the index of the function its body
 * calls first when its first instruction is a `call` (else `undefined`).
 */
export function readModule(bytes) {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error('not a WebAssembly module');
  }
  const r = new Reader(bytes, 8);
  let imported = 0;
  const exports = [];
  const firstCall = [];
  const names = new Map();
  while (r.at < bytes.length) {
    const id = bytes[r.at++];
    const size = r.u32();
    const end = r.at + size;
    const s = new Reader(bytes, r.at, end);
    if (id === 2) {
      for (let n = s.u32(); n > 0; n--) {
        s.name();
        s.name();
        const kind = bytes[s.at++];
        if (kind === 0x00) imported++;
        s.skipImportDesc(kind);
      }
    } else if (id === 7) {
      for (let n = s.u32(); n > 0; n--) {
        const name = s.name();
        const kind = bytes[s.at++];
        const index = s.u32();
        if (kind === 0x00) exports.push({ name, index });
      }
    } else if (id === 10) {
      for (let n = s.u32(); n > 0; n--) {
        const bodySize = s.u32();
        const bodyEnd = s.at + bodySize;
        for (let groups = s.u32(); groups > 0; groups--) {
          s.u32();
          s.at++; // local count, value type
        }
        firstCall.push(bytes[s.at] === 0x10 ? (s.at++, s.u32()) : undefined);
        s.at = bodyEnd;
      }
    } else if (id === 0 && s.name() === 'name') {
      while (s.at < end) {
        const sub = bytes[s.at++];
        const subEnd = s.u32() + s.at;
        if (sub === 1) {
          for (let n = s.u32(); n > 0; n--) {
            const index = s.u32();
            names.set(index, s.name());
          }
        }
        s.at = subEnd;
      }
    }
    r.at = end;
  }
  return {
    names,
    exports,
    /** The function an exported or defined function calls first, if any. */
    firstCallOf: (index) => (index < imported ? undefined : firstCall[index - imported]),
  };
}

// A pool thread of the threaded build in a browser: a module Web Worker
// that pkg/src/builds.js starts, one per thread (see threads.js).
import * as glue from '../dist/threads/edgeserve.js';
import { threadMain } from './threads.js';

const main = threadMain(glue, (m) => self.postMessage(m));
self.onmessage = ({ data }) => main(data);

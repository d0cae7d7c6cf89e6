// A pool thread of the threaded build in Node: a worker_threads worker that
// pkg/src/node.js starts, one per thread (see threads.js).
import { parentPort } from 'node:worker_threads';
import * as glue from '../dist/threads/edgeserve.js';
import { threadMain } from './threads.js';

const main = threadMain(glue, (m) => parentPort.postMessage(m));
parentPort.on('message', main);

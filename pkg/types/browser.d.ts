// Types of the browser entry points (`edgeserve`, `edgeserve/cpu` under the
// `browser` and `default` conditions): images include the DOM's.

export * from './common.js';
import type { BinaryImage, Classification, ClassifierMembers, ClassifierStatic, ClassifyOptions } from './common.js';

/**
 * An image: encoded bytes (PNG, JPEG, WebP, GIF, BMP), a Blob, pixels
 * (`ImageData` or `{ width, height, data }`), or anything the browser draws.
 */
export type ImageSource =
  | BinaryImage
  | ImageData
  | HTMLImageElement
  | HTMLCanvasElement
  | HTMLVideoElement
  | OffscreenCanvas
  | ImageBitmap
  | VideoFrame;

/** A model ready to classify images and answer TF Serving requests. */
export interface Classifier extends ClassifierMembers {
  /** The top `topK` (default 5) classes of one image. */
  classify(image: ImageSource, options?: ClassifyOptions): Promise<Classification>;
}
/** Loads models: `await Classifier.load(options)`. */
export declare const Classifier: ClassifierStatic<Classifier>;

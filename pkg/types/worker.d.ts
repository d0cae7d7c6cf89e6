// Types of the entry point for Workers (`edgeserve` under the `workerd` condition):
// no DOM, so images are bytes, a Blob or pixels.

export * from './common.js';
import type { BinaryImage, Classification, ClassifierMembers, ClassifierStatic, ClassifyOptions } from './common.js';

/** An image: encoded bytes (PNG, JPEG, WebP, GIF, BMP), a Blob, or pixels (`{ width, height, data }`). */
export type ImageSource = BinaryImage;

/** A model ready to classify images and answer TF Serving requests. */
export interface Classifier extends ClassifierMembers {
  /** The top `topK` (default 5) classes of one image. */
  classify(image: ImageSource, options?: ClassifyOptions): Promise<Classification>;
}
/** Loads models: `await Classifier.load(options)`. */
export declare const Classifier: ClassifierStatic<Classifier>;

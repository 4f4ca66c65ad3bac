import { runConverge } from '@converge-es/converge';
import { shopPlatform } from './app.js';

// `npm start`: the shop platform on converge. The cluster primary forks this same file for its workers and projector.
runConverge(shopPlatform);
